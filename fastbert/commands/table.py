"""Results as aligned text columns, for the commands' human-readable output."""

from __future__ import annotations


def aligned(rows: list[tuple[str, ...]]) -> str:
    """``rows`` (the first a header) with every column but the last padded to its widest cell."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip()
                     for row in rows)

"""PNG plots from result JSON (matplotlib, Agg backend): normalized batch-1 latency, throughput, and fastbert's
speedup in each task workload."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on the GPU machine or in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402


def latency_plot(data: dict, path: Path) -> Path | None:
    """Each system's P90 divided by fastbert's P90, per sequence length: above 1 means slower than fastbert."""
    section = data.get("protocol", {})
    if "points" not in section:
        return None
    reference, colors = section["reference"], palette(data)
    fig, ax = plt.subplots(figsize=(8, 5))
    for system in section["systems"]:
        xs, ys = [], []
        for row in section["points"]:
            ours, theirs = row["results"][reference], row["results"][system]
            if ours.get("status") == "ok" and theirs.get("status") == "ok":
                xs.append(row["seq"])
                ys.append(theirs["p90_ms"] / ours["p90_ms"])
        if xs:
            ax.plot(xs, ys, marker="o", label=system, color=colors[system],
                    linewidth=2.5 if system == reference else 1.5)
    floors = [(row["seq"], section["weight_read_floor_ms"] / row["results"][reference]["p90_ms"])
              for row in section["points"] if row["results"][reference].get("status") == "ok"]
    if floors:
        ax.plot(*zip(*floors), linestyle=":", color="gray", label="weight-read floor")
    ax.set_xscale("log", base=2)
    log_axis(ax.yaxis)
    ax.set_xticks(section["seqs"], [str(s) for s in section["seqs"]])
    ax.set_xlabel("sequence length (tokens), batch 1")
    ax.set_ylabel(f"P90 latency / {reference} P90 (log scale)")
    env = data["environment"]
    ax.set_title(f"{section['model']} fill-mask, {section['dtype']}, {env.get('gpu')}: "
                 f"P90 latency relative to {reference}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def throughput_plot(data: dict, path: Path) -> Path | None:
    """Sequences/s per system, grouped by model and shape (the mixed-length batch last)."""
    throughput = data.get("throughput", {})
    groups = [(f"{model}\n{throughput['batch']}x{row['seq']}", row)
              for model, comparison in throughput.get("models", {}).items() for row in comparison["points"]]
    if "points" in data.get("mixed", {}):
        lengths = data["mixed"]["lengths"]
        groups.append((f"{data['mixed']['model']}\n{len(lengths)} mixed {min(lengths)}-{max(lengths)}",
                       data["mixed"]["points"][0]))
    if not groups:
        return None
    colors = palette(data)
    width = 0.8 / max(len(row["results"]) for _, row in groups)
    fig, ax = plt.subplots(figsize=(max(8, 1.8 * len(groups)), 5))
    labelled = set()
    for position, (_, row) in enumerate(groups):
        systems = list(row["results"])
        for slot, system in enumerate(systems):
            result = row["results"][system]
            if result.get("status") != "ok":
                continue  # a gap where a system did not run
            ax.bar(position + (slot - (len(systems) - 1) / 2) * width, result["sequences_per_s"], width=width,
                   color=colors[system], label=None if system in labelled else system)
            labelled.add(system)
    ax.set_xticks(range(len(groups)), [label for label, _ in groups], fontsize=8)
    log_axis(ax.yaxis)
    ax.set_ylabel("sequences/s (from P50 per batch, log scale)")
    ax.set_title(f"fill-mask throughput, {data['environment'].get('gpu')}")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def workload_speedups(data: dict) -> list[tuple[str, float]]:
    """(workload and peer, peer time / fastbert time) for every task section of a result that has both."""
    bars = []
    for section, unit in (("embed", "embeddings"), ("rerank", "reranking")):
        for peer, ratio in data.get(section, {}).get("speedup", {}).items():
            bars.append((f"{unit} vs {peer}", ratio))
    for task, entry in data.get("tasks", {}).get("tasks", {}).items():
        if entry.get("speedup") is not None:
            bars.append((f"{task} pipeline vs transformers", entry["speedup"]))
    classify = data.get("classify", {})
    for peer, speedup in classify.get("batch1", {}).get("speedup_p90", {}).items():
        bars.append((f"classification batch 1, mean P90 vs {peer}", speedup["mean"]))
    for part, label in (("encoder", "encoder"), ("all_logits", "all-position logits")):
        comparison = data.get("scale", {}).get(part, {})
        for point in comparison.get("points", []):
            ours = point["results"][comparison["reference"]]
            for peer, theirs in point["results"].items():
                if peer != comparison["reference"] and ours.get("status") == theirs.get("status") == "ok":
                    bars.append((f"{label} {point['batch']}x{point['seq']} vs {peer}",
                                 theirs["p50_ms"] / ours["p50_ms"]))
    return bars


def speedup_plot(data: dict, path: Path) -> Path | None:
    """fastbert's speedup over each peer in each task workload, as horizontal bars; 1 = as fast."""
    bars = workload_speedups(data)
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(bars) + 1.6))
    labels, ratios = zip(*bars)
    ax.barh(range(len(bars)), ratios, color=["tab:blue" if r >= 1 else "tab:red" for r in ratios])
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(bars)), labels, fontsize=8)
    ax.invert_yaxis()
    for position, ratio in enumerate(ratios):
        ax.text(ratio, position, f" {ratio:.2f}x", va="center", fontsize=8)
    env = data["environment"]
    ax.set_xlabel("fastbert speedup (peer time / fastbert time, log scale)")
    ax.set_title(f"{env.get('gpu')}, torch {env.get('torch')}, triton {env.get('triton')}, transformers "
                 f"{env.get('transformers')}, {env.get('date')}", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    return save(fig, path)


def palette(data: dict) -> dict:
    """One color per system, the same in every plot of this result."""
    comparisons = [data.get("protocol", {}), data.get("mixed", {}),
                   *data.get("throughput", {}).get("models", {}).values()]
    names = sorted({name for c in comparisons for name in c.get("systems", {})})
    return {name: plt.cm.tab10(index % 10) for index, name in enumerate(names)}


def log_axis(axis) -> None:
    """Log scale labelled 1, 2, 5, 10, ... in plain numbers rather than powers of ten."""
    axis.axes.set_yscale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def render(data: dict, out_dir: Path, result_stem: str) -> dict[str, Path]:
    """section -> PNG written for it."""
    made = {"protocol": latency_plot(data, Path(out_dir) / f"{result_stem}-latency.png"),
            "throughput": throughput_plot(data, Path(out_dir) / f"{result_stem}-throughput.png"),
            "tasks": speedup_plot(data, Path(out_dir) / f"{result_stem}-speedups.png")}
    return {section: path for section, path in made.items() if path is not None}

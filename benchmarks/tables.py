"""Markdown from result JSON: the full report, a brief one for the console, the README block, the kernel tables."""

from __future__ import annotations

from typing import Callable

SECTION_TITLES = {"protocol": "Batch-1 fill-mask latency", "throughput": "Throughput", "mixed": "Mixed-length batch",
                  "crossover": "Padded or packed",
                  "coldstart": "Cold start", "pipeline": "Pipeline", "tasks": "Task pipelines", "ops": "Kernels",
                  "embed": "Sentence embeddings", "rerank": "Reranking", "classify": "Sequence classification",
                  "scale": "Work at every token"}
BRIEF_ERROR_CHARS = 240
METHOD_LINE = ("How each section is measured: benchmarks/README.md. Which code each section of a committed result "
               "measured, and how much runs of the same code moved: benchmarks/NOTES.md, \"Run history\".")


def number(x, digits: int = 3) -> str:
    """``digits`` significant digits, without exponents for large values."""
    if x is None:
        return "–"
    return f"{x:.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def cell(result: dict, fmt) -> str:
    return fmt(result) if result.get("status") == "ok" else result.get("status", "–")


def latency(result: dict) -> str:
    return f"{number(result['p50_ms'])} / {number(result['p90_ms'])}"


def ok_points(comparison: dict, system: str) -> list[dict]:
    return [row["results"][system] for row in comparison["points"] if row["results"][system].get("status") == "ok"]


def environment_line(env: dict) -> str:
    hardware = env.get("gpu", "?")
    if "sm_count" in env:
        hardware += f" ({env['sm_count']} SMs, {env.get('memory_gib')} GiB, SM clock {env.get('clocks.sm', '?')}" \
                    f" of max {env.get('clocks.max.sm', '?')}, memory clock {env.get('clocks.mem', '?')}," \
                    f" driver {env.get('driver_version', '?')})"
    return (f"{hardware}; torch {env.get('torch')} (CUDA {env.get('cuda')}), triton {env.get('triton')}, "
            f"transformers {env.get('transformers')}, fastbert {env.get('fastbert')}; {env.get('date')}.")


def floors_line(floors: dict) -> str:
    return (f"Ceilings measured in the same run: device copy {number(floors['copy_gbps'], 4)} GB/s (bytes read + "
            f"written, {floors['copy_bytes'] / 2**30:.2g} GiB), {floors['gemm_dtype']} GEMM {floors['gemm_n']}³ "
            f"{number(floors['gemm_tflops'], 4)} TFLOP/s.")


def clip(text: str, brief: bool) -> str:
    return text[:BRIEF_ERROR_CHARS] + " [...]" if brief and len(text) > BRIEF_ERROR_CHARS else text


def notes(label: str, comparison: dict, brief: bool) -> list[str]:
    """Failed, skipped and n/a results, one line per system and reason, with the points they hit."""
    grouped: dict[tuple, list[str]] = {}
    for row in comparison["points"]:
        for system, result in row["results"].items():
            if result.get("status") != "ok":
                why = clip(result.get("error") or result.get("reason", ""), brief)
                grouped.setdefault((system, result.get("status"), why), []).append(f"{row['batch']}x{row['seq']}")
    return [f"- {label} / {system}: {status} at {', '.join(where)}: {why}"
            for (system, status, why), where in grouped.items()]


def correctness_line(comparison: dict) -> str:
    check = comparison["correctness"]
    parts = [f"{name} {number(c['max_abs_diff'], 2)}{'' if c['ok'] else ' MISMATCH'}"
             for name, c in check["systems"].items()]
    return (f"Max |logit difference| at the [MASK] positions vs {check['reference']} (tolerance "
            f"{number(check['tolerance'], 2)}): {', '.join(parts) or 'nothing to compare'}.")


def protocol_tables(section: dict, brief: bool) -> list[str]:
    seqs = [str(row["seq"]) for row in section["points"]]
    systems = list(section["systems"])
    out = [f"{section['model']}, batch 1, {section['dtype']}: P50 / P90 ms over up to {section['iters']} timed runs "
           f"per point after {section['warmup']} warm-up calls.",
           table(["system", *seqs], [[name, *(cell(row["results"][name], latency) for row in section["points"])]
                                    for name in systems]),
           "Speedup of fastbert, peer P90 / fastbert P90 (mean: over the seqs where both ran):",
           table(["peer", *seqs, "mean"], [[name, *(number(r, 3) for r in s["per_point"]), number(s["mean"], 3)]
                                           for name, s in section["speedup_p90"].items()]),
           f"Weight-read floor at batch 1: {section['weight_read_bytes'] / 1e6:.0f} MB of encoder and MLM-head weights "
           f"at the measured copy bandwidth = {number(section['weight_read_floor_ms'])} ms."]
    if not brief:
        out.append("Prepare seconds per shape (fastbert: graph capture; peers: CUDA-graph capture or compile):")
        out.append(table(["system", *seqs], [[name, *(cell(row["results"][name], lambda r: number(r["prepare_s"]))
                                                      for row in section["points"])] for name in systems]))
        out.append(correctness_line(section))
    return out


def throughput_tables(section: dict, brief: bool) -> list[str]:
    columns = [(model, index) for model, c in section["models"].items() for index in range(len(c["points"]))]
    header = ["system", *(f"{model} {section['models'][model]['points'][i]['seq']}" for model, i in columns)]
    systems = list(next(iter(section["models"].values()))["systems"])

    def rate(result):
        return f"{result['sequences_per_s']:.0f} seq/s ({number(result['p50_ms'])} ms)"
    rows = [[name, *(cell(section["models"][m]["points"][i]["results"][name], rate) for m, i in columns)]
            for name in systems]
    floor = [section["models"][m]["points"][i]["compute_floor_ms"] for m, i in columns]
    rows.append(["compute floor", *(f"{section['batch'] / f * 1e3:.0f} seq/s ({number(f)} ms)" for f in floor)])
    out = [f"Batch {section['batch']}: sequences/s from the P50 time per batch (in brackets). Compute floor: matmul "
           "FLOPs of fill-mask (one [MASK] per sequence) at the measured GEMM rate.", table(header, rows)]
    if not brief:
        out += [f"{model}: {correctness_line(c)}" for model, c in section["models"].items()]
    return out


def mixed_tables(section: dict, brief: bool) -> list[str]:
    lengths, row = section["lengths"], section["points"][0]
    reference = row["results"][section["reference"]]

    def line(name, result):
        if result.get("status") != "ok":
            return [name, result.get("status", "–"), "", "", ""]
        versus = reference["p50_ms"] / result["p50_ms"] if reference.get("status") == "ok" else None
        return [name, number(result["p50_ms"]), number(result["p90_ms"]), f"{result['sequences_per_s']:.0f}",
                number(versus)]
    out = [f"{section['model']}: {len(lengths)} texts of {min(lengths)}..{max(lengths)} tokens ({sum(lengths)} tokens, "
           f"{len(lengths) * max(lengths)} when padded to the longest). Compute floor on the real tokens: "
           f"{number(row['compute_floor_ms'])} ms.",
           table(["system", "P50 ms", "P90 ms", "seq/s", f"speed vs {section['reference']} (P50)"],
                 [line(name, row["results"][name]) for name in section["systems"]])]
    if not brief:
        out.append(correctness_line(section))
    return out


def crossover_tables(section: dict, brief: bool) -> list[str]:
    out = [f"{section['model']}: fastbert padded against packed (P50 ms) on batches with one row at the longest length "
           "and the rest spread to fill the given share of the padded positions."]
    for group in section["groups"]:
        rows = [[f"{row['fill']:.2f}", *(cell(row["results"][name], lambda r: number(r["p50_ms"]))
                                         for name in group["systems"]), number(row["packed_speedup"])]
                for row in group["points"]]
        found = group["crossover_fill"]
        out += [f"Batch {group['batch']}, longest {group['seq']}: packed faster up to fill "
                f"{'–' if found is None else f'{found:.2f}'}.",
                table(["fill", *group["systems"], "padded / packed"], rows)]
    return out


def coldstart_tables(section: dict, brief: bool) -> list[str]:
    def seconds(r, key):
        return number(r.get(key))

    def megabytes(r, key):
        return "–" if r.get(key) is None else f"{r[key] / 2**20:.0f} MiB"
    rows = []
    for label in ("empty_triton_cache", "warm_triton_cache"):
        r = section.get(label, {})
        if r.get("status") != "ok":
            rows.append([label, r.get("status", "–"), *[""] * 6])
            continue
        rows.append([label, seconds(r, "process_wall_s"), seconds(r, "import_s"), seconds(r, "load_s"),
                     seconds(r, "first_result_s"), seconds(r, "all_batch1_captured_s"),
                     megabytes(r, "graph_memory_bytes"), megabytes(r, "max_memory_allocated_bytes")])
    return [f"{section['model']}, a fresh process each. Seconds from the call of FastBert.from_pretrained (imports "
            f"apart) to the first batch-1 seq-{section['first_result_seq']} result and to every batch-1 bucket "
            "captured (warmup(batch_sizes=(1,))).",
            table(["Triton cache", "process s", "imports s", "load s", "first result s", "all batch-1 graphs s",
                   "graph memory", "max allocated"], rows)]


def pipeline_tables(section: dict, brief: bool) -> list[str]:
    def texts(result):
        return f"{result['texts_per_s']:.0f}"
    rows = [[name, cell(r, texts), cell(r, lambda r: number(r["wall_s"]))] for name, r in section["systems"].items()]
    fewest, most = section["words_per_text"]
    out = [f"{section['texts']} English sentences ({fewest}-{most} words, one [MASK] each), batch_size "
           f"{section['batch_size']}, {section['model']}; tokenization and post-processing included.",
           table(["pipeline", "texts/s", "seconds per pass"], rows)]
    if "top1_agreement" in section:
        out.append(f"fastbert {number(section['speedup'])}x transformers; same top-1 token on "
                   f"{100 * section['top1_agreement']:.1f}% of texts.")
    out += [f"- pipeline / {name}: {r['status']}: {clip(r.get('error') or r.get('reason', ''), brief)}"
            for name, r in section["systems"].items() if r.get("status") != "ok"]
    return out


def task_tables(section: dict, brief: bool) -> list[str]:
    def texts(result):
        return f"{result['texts_per_s']:.0f}"
    rows = []
    for task, entry in section["tasks"].items():
        systems = entry["systems"]
        rows.append([task, *(cell(systems.get(name, {}), texts) for name in ("fastbert", "transformers")),
                     number(entry.get("speedup")),
                     "–" if "agreement" not in entry else f"{100 * entry['agreement']:.1f}%"])
    fewest, most = section["words_per_text"]
    out = [f"{section['texts']} English sentences ({fewest}-{most} words), batch_size {section['batch_size']}, "
           f"{section['model']}, {section['dtype']}; tokenization and post-processing included. Agreement: texts "
           "answered alike (best label; entities and offsets; first-token features within tolerance).",
           table(["task", "fastbert texts/s", "transformers texts/s", "speedup", "agreement"], rows)]
    out += [f"- tasks / {task} / {name}: {r['status']}: {clip(r.get('error') or r.get('reason', ''), brief)}"
            for task, entry in section["tasks"].items() for name, r in entry["systems"].items()
            if r.get("status") != "ok"]
    return out


def end_to_end_table(section: dict, unit: str, agreement_column: str, agreement_key: str) -> str:
    """One row per system of an end-to-end section: rate, seconds per pass, first pass, fastbert's speedup over it,
    and how far its answers are from fastbert's."""
    def row(name, result):
        if result.get("status") != "ok":
            return [name, result.get("status", "–"), "", "", "", ""]
        check = section["agreement"].get(name, {})
        return [name, f"{result['texts_per_s']:.0f}", number(result["wall_s"]), number(result["first_pass_s"]),
                number(section["speedup"].get(name)), number(check.get(agreement_key), 4)]
    return table(["system", f"{unit}/s", "s per pass", "first pass s", "fastbert speedup", agreement_column],
                 [row(name, result) for name, result in section["systems"].items()])


def end_to_end_notes(section: dict, label: str, brief: bool) -> list[str]:
    lines = [f"- {name}: {section['descriptions'][name]}" for name in section["systems"]] if not brief else []
    return lines + [f"- {label} / {name}: {r['status']}: {clip(r.get('error') or r.get('reason', ''), brief)}"
                    for name, r in section["systems"].items() if r.get("status") != "ok"]


def embed_tables(section: dict, brief: bool) -> list[str]:
    fewest, median, most = section["tokens_per_text"]
    return [f"{section['model']} ({section['weights']}), {section['dtype']}: {section['texts']} texts of "
            f"{fewest}-{most} tokens (median {median:.0f}, log-uniform), cut at {section['max_seq_length']}; "
            f"batch_size {section['batch_size']}; tokenization included. Rates from the median pass after an "
            "untimed first pass (first pass s: captures and compiles).",
            end_to_end_table(section, "texts", "min cosine vs fastbert", "min_cosine"),
            *end_to_end_notes(section, "embed", brief)]


def rerank_tables(section: dict, brief: bool) -> list[str]:
    fewest, median, most = section["tokens_per_document"]
    return [f"{section['model']}, {section['dtype']}: one {section['query_tokens']}-token query against "
            f"{section['documents']} documents of {fewest}-{most} tokens (median {median:.0f}); batch_size "
            f"{section['batch_size']}; rank() end to end.",
            end_to_end_table(section, "documents", "max |score diff| vs fastbert", "max_abs_score_diff"),
            *end_to_end_notes(section, "rerank", brief)]


def classify_tables(section: dict, brief: bool) -> list[str]:
    batch1, batched = section["batch1"], section["batched"]
    seqs = [str(row["seq"]) for row in batch1["points"]]
    out = [f"{section['model']}, {section['dtype']}: logits of every sequence, P50 / P90 ms over up to "
           f"{section['iters']} timed runs per point after {section['warmup']} warm-up calls. Batch 1:",
           table(["system", *seqs], [[name, *(cell(row["results"][name], latency) for row in batch1["points"])]
                                    for name in batch1["systems"]]),
           "Speedup of fastbert at batch 1, peer P90 / fastbert P90:",
           table(["peer", *seqs, "mean"], [[name, *(number(r, 3) for r in s["per_point"]), number(s["mean"], 3)]
                                           for name, s in batch1["speedup_p90"].items()])]

    def rate(row):
        return lambda r: f"{row['batch'] / r['p50_ms'] * 1e3:.0f} seq/s ({number(r['p50_ms'])} ms)"
    columns = [f"{row['batch']}x{row['seq']}" for row in batched["points"]]
    out += [f"Batch {batched['points'][0]['batch'] if batched['points'] else '–'}: sequences/s from the P50 time.",
            table(["system", *columns], [[name, *(cell(row["results"][name], rate(row)) for row in batched["points"])]
                                        for name in batched["systems"]])]
    if not brief:
        out += [f"Batch 1: {correctness_line(batch1)}", f"Batched: {correctness_line(batched)}"]
    return out


SCALE_PARTS = {"encoder": "encoder only (every token's hidden state)", "all_logits": "MLM logits at every position",
               "device_inputs": "batch-1 fill-mask, inputs already on the GPU against the same on the host",
               "fp8": "encoder only, FP8 GEMMs against the model's dtype"}


def scale_tables(section: dict, brief: bool) -> list[str]:
    """One row per workload and shape: P50 of fastbert and of its peer, the ratio (peer / fastbert), and the peak
    GPU memory of each (reserved, graph pools included)."""
    rows = []
    for part, comparison in section.items():
        if not (isinstance(comparison, dict) and "points" in comparison):
            continue
        label = SCALE_PARTS.get(part, part)
        reference = comparison["reference"]
        for point in comparison["points"]:
            ours = point["results"][reference]
            for peer, theirs in point["results"].items():
                if peer == reference:
                    continue
                both = ours.get("status") == "ok" and theirs.get("status") == "ok"
                rows.append([label, f"{point['batch']}x{point['seq']}", f"{reference}: {cell(ours, latency)}",
                             f"{peer}: {cell(theirs, latency)}",
                             number(theirs["p50_ms"] / ours["p50_ms"]) if both else "–",
                             f"{number(ours.get('peak_memory_mib'))} / {number(theirs.get('peak_memory_mib'))}"])
    return [f"{section['model']}, P50 / P90 ms over up to {section['iters']} timed runs after {section['warmup']} "
            "warm-up calls; ratio = peer P50 / fastbert P50 (above 1: fastbert faster).",
            table(["workload", "shape", "fastbert", "peer", "ratio", "peak MiB fastbert / peer"], rows)]


RENDERERS = {"protocol": protocol_tables, "throughput": throughput_tables, "mixed": mixed_tables,
             "crossover": crossover_tables,
             "coldstart": coldstart_tables, "pipeline": pipeline_tables, "tasks": task_tables,
             "embed": embed_tables, "rerank": rerank_tables, "classify": classify_tables, "scale": scale_tables}


def section_notes(data: dict, brief: bool) -> list[str]:
    lines = []
    if "protocol" in data:
        lines += notes("protocol", data["protocol"], brief)
    for model, comparison in data.get("throughput", {}).get("models", {}).items():
        lines += notes(f"throughput {model}", comparison, brief)
    if "mixed" in data:
        lines += notes("mixed", data["mixed"], brief)
    for group in data.get("crossover", {}).get("groups", []):
        lines += notes(f"crossover batch {group['batch']} seq {group['seq']}", group, brief)
    for part in ("batch1", "batched"):
        if part in data.get("classify", {}):
            lines += notes(f"classify {part}", data["classify"][part], brief)
    return lines


def render(data: dict, *, brief: bool = False, images: dict[str, str] | None = None) -> str:
    """The report of every section in ``data``; ``brief`` for the console (no prepare/correctness tables, errors cut);
    ``images``: section -> image path to show under it."""
    images = images or {}
    parts = [f"# fastbert benchmarks: {data['environment'].get('gpu')}, {data['environment'].get('date')}",
             environment_line(data["environment"]), METHOD_LINE]
    if "timed" in data:
        parts.append(f"**Timed:** {data['timed']}")
    if "floors" in data:
        floors = data["floors"]
        parts.append(f"Floors failed: {floors['error']}" if floors.get("status") == "failed" else floors_line(floors))
    brief_summary = summary(data)
    if brief_summary:
        parts += ["## Summary", *brief_summary]
    for key, renderer in RENDERERS.items():
        if key not in data:
            continue
        parts.append(f"## {SECTION_TITLES[key]}")
        if data[key].get("status") == "failed":
            parts.append(f"failed: {clip(data[key]['error'], brief)}")
            continue
        parts += renderer(data[key], brief)
        if key in images:
            parts.append(f"![{SECTION_TITLES[key]}]({images[key]})")
    failures = section_notes(data, brief)
    if failures:
        parts += ["## Not measured", "\n".join(failures)]
    return "\n\n".join(parts) + "\n"


def measured(data: dict, key: str) -> dict | None:
    section = data.get(key)
    return section if section and section.get("status") != "failed" else None


def timed_column(header: str, results: dict, reference: str, key: str) -> tuple[str, str, Callable]:
    """A summary column of one shape: fastbert's ``key`` time, and each peer's over it."""
    def time(system):
        result = results.get(system, {})
        return result[key] if result.get("status") == "ok" else None

    def ratio(peer):
        ours, theirs = time(reference), time(peer)
        return "–" if ours is None or theirs is None else f"{number(theirs / ours)}x"
    return header, "–" if time(reference) is None else f"{number(time(reference))} ms", ratio


def summary_columns(data: dict) -> list[tuple[str, str, Callable]]:
    """(header, fastbert's cell, peer -> cell) of the summary: batch 1 (P90) at the shortest, 128 and longest
    protocol lengths and the mean speedup over all; batch 32 (P50 per batch) at each shape of the protocol's model,
    and the mixed-length batch, packed by fastbert."""
    columns = []
    protocol = measured(data, "protocol")
    if protocol:
        by_seq = {row["seq"]: row["results"] for row in protocol["points"]}
        seqs = sorted(by_seq)
        for seq in sorted({seqs[0], *(s for s in (128,) if s in by_seq), seqs[-1]}):
            columns.append(timed_column(f"batch 1, seq {seq}", by_seq[seq], protocol["reference"], "p90_ms"))
        means = {peer: speedup["mean"] for peer, speedup in protocol["speedup_p90"].items()}
        columns.append((f"batch 1, mean of seq {seqs[0]}-{seqs[-1]}", "",
                        lambda peer: "–" if means.get(peer) is None else f"{number(means[peer])}x"))
    throughput = measured(data, "throughput")
    if throughput:
        models = throughput["models"]
        model = protocol["model"] if protocol and protocol["model"] in models else next(iter(models))
        named = "" if protocol and model == protocol["model"] else f"{model} "
        for row in models[model]["points"]:
            columns.append(timed_column(f"{named}batch {throughput['batch']}, seq {row['seq']}", row["results"],
                                        models[model]["reference"], "p50_ms"))
    mixed = measured(data, "mixed")
    if mixed:
        lengths = mixed["lengths"]
        columns.append(timed_column(f"batch {len(lengths)}, mixed {min(lengths)}-{max(lengths)}",
                                    mixed["points"][0]["results"], "fastbert-packed", "p50_ms"))
    return columns


def summary(data: dict) -> list[str]:
    """One table: fastbert's time per call at each shape, and each peer's time as a multiple of it."""
    columns = summary_columns(data)
    if not columns:
        return []
    peers = list(dict.fromkeys(name for key in ("protocol", "throughput", "mixed")
                               for name in peer_names(data.get(key, {}))))
    rows = [["fastbert", *(ours for _, ours, _ in columns)]]
    rows += [[peer, *(theirs(peer) for _, _, theirs in columns)] for peer in peers]
    protocol = data.get("protocol", {})
    what = f"{protocol['model']} fill-mask, {protocol['dtype']}" if "model" in protocol else "fill-mask"
    return [f"{what}: fastbert's time per call, and each peer's time as a multiple of it (higher: fastbert is "
            "faster). Batch 1: P90; batch 32: P50 per batch, one [MASK] per text; the mixed batch: fastbert packed, "
            "the peers padded.",
            table(["", *(header for header, _, _ in columns)], rows)]


def peer_names(section: dict) -> list[str]:
    """The peers of a comparison section (of its first model, for throughput): systems other than fastbert's."""
    systems = section.get("systems") or next(iter(section.get("models", {}).values()), {}).get("systems", {})
    return [name for name in systems if not name.startswith("fastbert")]


def readme_block(data: dict, images: dict[str, str], report_link: str) -> str:
    """The README's numbers: the environment, the summary table, the batch-1 plot, a link to the full report."""
    parts = [environment_line(data["environment"]), *summary(data)]
    if "protocol" in images:
        parts.append(f"![{SECTION_TITLES['protocol']}]({images['protocol']})")
    parts.append(f"Every table, with compile times, correctness checks and what was skipped: "
                 f"[{report_link}]({report_link}).")
    return "\n\n".join(parts)


def kernel_cell(result: dict, unit: str, with_error: bool) -> str:
    text = f"{number(result['us'])} µs, {number(result['rate'])} {unit} ({result['pct_of_ceiling']:.0f}%)"
    return text + (f", err {number(result['max_abs_err_vs_exact'], 2)}" if with_error else "")


def kernel_tables(op: str, entry: dict) -> list[str]:
    points = entry["points"]
    names = list(dict.fromkeys(name for p in points for name in p.get("implementations", {})))
    with_error = any("max_abs_err_vs_exact" in r for p in points for r in p.get("implementations", {}).values())
    rows = []
    for p in points:
        measured = p.get("implementations", {})
        rows.append([f"{p['batch']}x{p['seq']}", *(
            cell(measured[n], lambda r: kernel_cell(r, entry["unit"], with_error)) if n in measured
            else p.get("status", "–") for n in names)])
    caption = f"Cells: time per call, {entry['unit']} (% of the {entry['ceiling']} ceiling)"
    out = [f"## {op}", caption + (", max |error| vs exact erf GELU in fp32." if with_error else "."),
           table(["batch x seq", *names], rows)]
    out += [f"- {op} {p['batch']}x{p['seq']}: {n}: {r['error']}" for p in points
            for n, r in p.get("implementations", {}).items() if r.get("status") == "failed"]
    out += [f"- {op} {p['batch']}x{p['seq']}: {p['status']}: {p.get('error') or p.get('reason')}"
            for p in points if p.get("status") in ("failed", "skipped")]
    return out


def render_ops(data: dict) -> str:
    parts = [f"# fastbert kernels: {data['environment'].get('gpu')}, {data['environment'].get('date')}",
             environment_line(data["environment"])]
    ops = data.get("ops", {})
    if ops.get("status") == "failed":
        return "\n\n".join([*parts, f"failed: {ops['error']}"]) + "\n"
    shape, ceilings = ops["shape"], ops["ceilings"]
    parts.append(f"{ops['dtype']}, hidden {shape['hidden']}, {shape['heads']} heads, intermediate "
                 f"{shape['intermediate']}, vocabulary {shape['vocab']}. Timing: {ops['timing']}. "
                 f"Ceilings from the same run: copy {number(ceilings['copy_gbps'], 4)} GB/s, GEMM "
                 f"{number(ceilings['gemm_tflops'], 4)} TFLOP/s.")
    for op, entry in ops["ops"].items():
        parts += kernel_tables(op, entry)
    return "\n\n".join(parts) + "\n"

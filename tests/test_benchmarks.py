"""Smoke test of the benchmark harness: the CPU run end to end in a subprocess, result merging, and the report's
README rewrite (on a temporary README)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.results import json_path, merge, stem

REPO = Path(__file__).resolve().parents[1]
COMPARISONS = ("protocol", "mixed")


@pytest.fixture(scope="module")
def cpu_results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--cpu", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return out


def main_json(out: Path) -> Path:
    found = [p for p in out.glob("*.json") if not p.name.endswith("-ops.json")]
    assert len(found) == 1, found
    return found[0]


def failures(comparison: dict) -> list[str]:
    return [f"{row['batch']}x{row['seq']} {name}: {result.get('error')}" for row in comparison["points"]
            for name, result in row["results"].items() if result["status"] == "failed"]


def test_cpu_run_measures_every_system_of_every_section(cpu_results):
    data = json.loads(main_json(cpu_results).read_text())
    assert {"environment", "timed", "floors", "protocol", "throughput", "mixed", "crossover", "coldstart",
            "pipeline", "tasks", "embed", "rerank", "classify"} <= data.keys()
    assert not [k for k, v in data.items() if isinstance(v, dict) and v.get("status") == "failed"]
    comparisons = [data[k] for k in COMPARISONS] + list(data["throughput"]["models"].values()) + \
        data["crossover"]["groups"] + [data["classify"]["batch1"], data["classify"]["batched"]]
    assert not [f for c in comparisons for f in failures(c)]
    for comparison in comparisons:
        reference = comparison["reference"]
        assert all(row["results"][reference]["status"] == "ok" for row in comparison["points"])
        assert comparison["correctness"]["systems"], "no peer was checked against fastbert"
        assert all(check["ok"] for check in comparison["correctness"]["systems"].values())
    protocol = data["protocol"]
    assert all(row["results"]["fastbert"]["p90_ms"] >= row["results"]["fastbert"]["p50_ms"] > 0
               for row in protocol["points"])
    assert protocol["speedup_p90"]["hf-eager"]["mean"] > 0
    assert data["mixed"]["points"][0]["results"]["fastbert-packed"]["status"] == "ok"
    assert all(row["packed_speedup"] > 0 for group in data["crossover"]["groups"] for row in group["points"])
    assert all(r["status"] == "ok" for r in data["pipeline"]["systems"].values())
    assert set(data["tasks"]["tasks"]) == {"text-classification", "token-classification", "feature-extraction"}
    for task, entry in data["tasks"]["tasks"].items():
        assert all(r["status"] == "ok" for r in entry["systems"].values()) and entry["agreement"] == 1.0, task
    assert all(data["coldstart"][label]["status"] == "ok" for label in ("empty_triton_cache", "warm_triton_cache"))


def test_cpu_run_times_the_sentence_encoders_against_their_peers(cpu_results):
    data = json.loads(main_json(cpu_results).read_text())
    embed, rerank = data["embed"], data["rerank"]
    for section in (embed, rerank):
        assert all(r["status"] == "ok" and r["texts_per_s"] > 0 for r in section["systems"].values()), section
        assert set(section["speedup"]) == set(section["systems"]) - {"fastbert"}
    assert set(embed["systems"]) == {"fastbert", "sentence-transformers", "torch.compile"}
    assert all(a["min_cosine"] > 0.9999 for a in embed["agreement"].values())  # fp32 on the CPU
    assert rerank["agreement"]["sentence-transformers"]["max_abs_score_diff"] < 1e-4
    markdown = main_json(cpu_results).with_suffix(".md").read_text()
    for title in ("## Sentence embeddings", "## Reranking", "## Sequence classification"):
        assert title in markdown


def test_cpu_run_benchmarks_every_kernel(cpu_results):
    result = main_json(cpu_results)
    ops = json.loads(result.with_name(result.stem + "-ops.json").read_text())["ops"]
    for name, entry in ops["ops"].items():
        for point in entry["points"]:
            assert point["implementations"], name
            assert all(r["status"] == "ok" for r in point["implementations"].values()), (name, point)


def test_cpu_run_writes_markdown_and_plots(cpu_results):
    result = main_json(cpu_results)
    markdown = result.with_suffix(".md").read_text()
    assert "## Summary" in markdown and "## Batch-1 fill-mask latency" in markdown and "| fastbert |" in markdown
    assert "## Task pipelines" in markdown and "| token-classification |" in markdown
    assert "## attention" in result.with_name(result.stem + "-ops.md").read_text()
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed: no plots")
    for suffix in ("-latency.png", "-throughput.png"):
        assert result.with_name(result.stem + suffix).read_bytes().startswith(b"\x89PNG"), suffix


def test_sections_of_two_calls_merge_into_one_result(tmp_path):
    env = dict(gpu="NVIDIA H200", date="2030-01-02")
    merge(tmp_path, stem(env), "protocol", {"seqs": [8]}, env)
    merge(tmp_path, stem(env), "throughput", {"batch": 32}, env)
    merge(tmp_path, stem(env), "ops", {"ops": {}}, env)
    data = json.loads((tmp_path / "nvidia-h200-2030-01-02.json").read_text())
    assert data["protocol"] == {"seqs": [8]} and data["throughput"] == {"batch": 32} and "ops" not in data
    assert json.loads(json_path(tmp_path, stem(env), "ops").read_text())["ops"] == {"ops": {}}


def test_report_rewrites_the_readme_only_between_the_markers(cpu_results, tmp_path):
    readme = tmp_path / "README.md"
    head = "# fastbert\n\nintro\n\n## Performance\n\n<!-- benchmarks:start -->\n"
    tail = "<!-- benchmarks:end -->\n\nafter\n"
    readme.write_text(head + "old numbers\n" + tail)
    report.main(["--results", str(cpu_results), "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith(head) and text.endswith(tail) and "old numbers" not in text
    block = text[len(head):-len(tail)]
    assert "| fastbert |" in block
    assert [line.startswith("|---") for line in block.splitlines()].count(True) == 1, "one table"
    assert block.count("![") == 1, "one plot"
    linked = [part.split(")")[0] for part in text.split("](")[1:]]
    assert linked and all((tmp_path / link).is_file() for link in linked), linked


def test_report_leaves_a_readme_without_markers_untouched(cpu_results, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# fastbert\n\nno markers here\n")
    report.main(["--results", str(cpu_results), "--readme", str(readme)])
    assert readme.read_text() == "# fastbert\n\nno markers here\n"

"""The benchmark harness's quick path on tiny sizes: every scenario measured, every file written.

No timing is asserted: only that each scenario of every suite ran in its subprocess and came
back with positive figures, and that the JSON, Markdown and PNG files hold them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib", reason="the benchmark harness needs the bench extra")

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("results")
    command = [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--max-size", "1MiB"]
    command += ["--repeat", "1", "--count", "5", "--out", str(out)]
    command += ["--tmpdir", str(tmp_path_factory.mktemp("payloads"))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-5000:]
    report: dict[str, Any] = json.loads((out / "results.json").read_text())
    return out, report


@pytest.fixture
def scenarios(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The scenario tables of the benchmark modules, which the harness must cover."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import pipeline_bench
    import s3_bench
    import sns_bench
    import sqs_bench

    return {
        "pipeline": pipeline_bench.SCENARIOS,
        # "single GET" stands in for "boto3 transfer" only where ranged GETs are skipped.
        "s3": {name for name, _ in s3_bench.SCENARIOS} - {"boto3 transfer, single GET"},
        "sqs": {label for label, *_ in sqs_bench.LARGE},
        "sns": {label for label, *_ in sns_bench.LARGE},
    }


@pytest.mark.slow
def test_every_scenario_has_positive_figures(
    run: tuple[Path, dict[str, Any]], scenarios: dict[str, Any]
) -> None:
    _, report = run
    results = report["results"]
    for entry in results:
        where = f"{entry['table']} / {entry['scenario']} / {entry['size_label']}"
        assert not entry["errors"], where
        assert entry["runs"], where
        assert entry["seconds_best"] > 0, where
        assert entry["seconds_median"] >= entry["seconds_best"], where
        assert entry["mb_s_best"] > 0, where
        assert entry["peak_rss_mib"] >= 0, where
        assert entry["vs_baseline_best"] > 0, where
    by_suite: dict[str, list[dict[str, Any]]] = {}
    for entry in results:
        by_suite.setdefault(entry["suite"], []).append(entry)
    assert set(by_suite) == {"pipeline", "s3", "sqs", "sns"}
    # The pipeline at 1 KiB and 1 MiB; S3 on moto and on the local endpoint at 1 MiB.
    assert len(by_suite["pipeline"]) == 2 * len(scenarios["pipeline"])
    s3_tables: dict[str, set[str]] = {}
    for entry in by_suite["s3"]:
        s3_tables.setdefault(entry["table"], set()).add(entry["scenario"])
    assert len(s3_tables) == 2
    assert all(names == scenarios["s3"] for names in s3_tables.values())
    for suite in ("sqs", "sns"):
        large = {e["scenario"] for e in by_suite[suite] if e["size"] > 1024}
        small = {e["scenario"] for e in by_suite[suite] if e["size"] == 1024}
        assert large == scenarios[suite]
        assert len(small) == 3  # raw boto3, ours, the official client


@pytest.mark.slow
def test_json_markdown_and_plots_are_written(run: tuple[Path, dict[str, Any]]) -> None:
    out, report = run
    assert report["machine"]["cpu"]
    assert report["machine"]["cores"] >= 1
    assert report["machine"]["packages"]["boto3"]
    assert report["targets"]
    markdown = (out / "results.md").read_text()
    assert report["machine"]["cpu"] in markdown.split("\n## ")[0]
    for entry in report["results"]:
        assert f"## {entry['table']}" in markdown
        assert f"| {entry['scenario']} |" in markdown
    for name in ("throughput.png", "memory.png"):
        image = (out / name).read_bytes()
        assert image.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(image) > 10_000
        assert f"]({name})" in markdown

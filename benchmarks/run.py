"""Every benchmark scenario side by side, in one run: JSON, a Markdown table and PNG plots.

Usage::

    python benchmarks/run.py [--quick] [--network PROFILE ...] [--out DIR] [--max-size SIZE]
                             [--only SUITE ...] [--merge]

``--network`` runs the suites behind a network profile (``shaper.py`` in front of every
endpoint): ``loopback`` (127.0.0.1 as it is: every suite), ``same-region`` (90 MB/s per
connection, 2 ms round trip) or ``cross-region`` (50 MB/s, 70 ms), where the S3 suite runs on
``local_s3.py`` against boto3's transfer manager and the SQS suite adds 300 KB round trips;
``--quick`` defaults to loopback, the full runs to all three.

Runs the scenarios of ``pipeline_bench.py`` (core pipeline and Offloader over the local store vs
a plain copy; compression off and on; sha256, crc32c, xxh3-128, blake3), ``s3_bench.py`` (the S3
store and the Offloader vs raw boto3 and s3fs, on a moto server and on a trivial local S3
endpoint, with and without body signing), ``sqs_bench.py`` and ``sns_bench.py`` (1 KiB sends vs
raw boto3; large payloads vs the official ``amazon-sqs-extended-client`` and
``amazon-sns-extended-client``) and ``aio_bench.py`` (the asyncio face: 1 KiB sends of the
asynchronous SQS transport vs raw aiobotocore, its consumer loop vs the synchronous consumer,
many concurrent resolves on one event loop), each scenario in a subprocess of its own, then writes
``results.json``, ``results.md``, ``throughput.png`` and ``memory.png`` to ``--out`` (default
``benchmarks/results/``, with ``--quick`` ``benchmarks/results/quick/``). ``--quick`` runs
small sizes with two repeats (one to two minutes on two cores per profile); the default full
run goes from 1 KiB to 1 GiB (2 GiB on the local S3 endpoint) behind all three profiles, in
about 35 minutes; ``--complete`` adds 2 GiB everywhere the issues ask for it
(S3 on moto, the core pipeline) and 1 GiB for SNS. ``--max-size`` leaves out larger sizes,
``--repeat`` and ``--count`` override the plan's. ``--only`` runs some suites (``pipeline``,
``s3``, ``sqs``, ``sns``, ``asyncio``); with ``--merge`` their rows replace those of the same
suites and profiles in ``--out``'s ``results.json``, and the rest stay. Needs the ``bench``
extra (matplotlib, moto, s3fs, the official clients) and free disk space under ``--tmpdir``
for a few payload files of every size run (about 16 GiB for the full run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the scenario modules sit beside this script

import _report  # noqa: E402
from _harness import PLANS, PROFILES, SUITES, Harness, parse_size, summarize  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--quick", action="store_true", help="small sizes, 2 repeats (~2 min)")
    scope.add_argument(
        "--complete", action="store_true", help="every size, 2 GiB on moto too (~30 min)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output directory (default: benchmarks/results/, with --quick results/quick/)",
    )
    parser.add_argument(
        "--max-size", type=parse_size, help="leave out larger sizes (e.g. 256MiB, 1MiB)"
    )
    parser.add_argument("--repeat", type=int, help="runs per scenario at every size")
    parser.add_argument("--count", type=int, help="1 KiB sends per client and run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the run order")
    parser.add_argument("--tmpdir", type=Path, help="where payload files go")
    parser.add_argument(
        "--network",
        action="append",
        choices=[*PROFILES, "all"],
        help=(
            "network profile(s) to run behind, in order (repeat the option; default: loopback "
            "with --quick, all three otherwise): loopback (127.0.0.1 as it is), same-region "
            "(90 MB/s per connection, 2 ms RTT), cross-region (50 MB/s, 70 ms)"
        ),
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SUITES,
        help="run this suite only (repeat the option for several; default: every suite)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help=(
            "keep --out's results.json: this run's rows replace those of the same suites and "
            "profiles there, the others stay"
        ),
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: write the Markdown and plots again from --out's results.json",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = HERE / "results" / "quick" if args.quick else HERE / "results"
    if args.report_only:
        report = json.loads((args.out / "results.json").read_text())
        return write(report, args.out)

    name = "quick" if args.quick else "complete" if args.complete else "full"
    networks = args.network or (["loopback"] if args.quick else ["all"])
    chosen = PROFILES if "all" in networks else tuple(dict.fromkeys(networks))
    plan = PLANS[name].on(chosen).capped(args.max_size, args.repeat, args.count)
    plan = plan.restricted(tuple(args.only or ()))
    command = "python benchmarks/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    started = datetime.now(timezone.utc)
    start, load_start = time.monotonic(), _report.load_average()
    with tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="offload-bench-") as tmp:
        harness = Harness(plan, Path(tmp), seed=args.seed)
        entries = summarize(harness.run())
    report = {
        "mode": plan.name,
        "command": command.strip(),
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_seconds": time.monotonic() - start,
        "load_average": {"start": load_start, "end": _report.load_average()},
        "machine": _report.machine(),
        "plan": dataclasses.asdict(plan),
        "skipped": harness.skipped,
        "not_run": list(plan.notes),
        "results": entries,
    }
    previous = args.out / "results.json"
    if args.merge and previous.exists():
        report = merged(json.loads(previous.read_text()), report)
    return write(report, args.out)


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` report with ``new``'s rows in place of its rows of the same suites and profiles;
    ``new``'s run is recorded under ``merged`` (command, time, load, plan)."""
    ran = {(e["suite"], e["network"]) for e in new["results"]}
    kept = [e for e in old["results"] if (e["suite"], e.get("network", "loopback")) not in ran]
    run = {k: new[k] for k in ("mode", "command", "started", "duration_seconds", "load_average")}
    run["suites"] = sorted({suite for suite, _ in ran})
    run["networks"] = list(dict.fromkeys(network for _, network in ran))
    run["plan"] = new["plan"]
    earlier = [
        r
        for r in old.get("merged", [])
        if any((s, n) not in ran for s in r["suites"] for n in r["networks"])
    ]
    report = dict(old)
    report["results"] = kept + new["results"]
    report["plan"] = {**old["plan"], "aio": new["plan"]["aio"]}
    report["merged"] = [*earlier, run]
    report["skipped"] = old["skipped"] + new["skipped"]
    return report


def write(report: dict[str, Any], out: Path) -> int:
    """The targets and notes of ``report``, then every output file; 1 if a scenario failed."""
    entries = report["results"]
    report["configurations"] = _report.configuration_notes(report["plan"])
    report["configurations"] += _report.network_notes(report["plan"])
    report["targets"] = _report.targets(entries)
    out.mkdir(parents=True, exist_ok=True)
    machine = report["machine"]
    subtitle = f"{machine['cpu']}, {machine['cores']} cores; {report['command']}"
    images = _report.plots(entries, out, subtitle)
    (out / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "results.md").write_text(_report.markdown(report, images))
    print(f"wrote {out}/results.json, results.md, {', '.join(images)}", file=sys.stderr)
    failed = [e for e in entries if e["errors"]]
    for entry in failed:
        print(f"failed: {entry['table']} {entry['scenario']}: {entry['errors'][-1]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

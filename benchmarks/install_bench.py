"""How installing offload goes: resolution with old and new pip, and the size of the Lambda path.

Usage::

    python benchmarks/install_bench.py [--pips 22.0.4,bundled,latest] [--extras aws,s3,all,demo]
                                       [--json out.json]

For each pip (``bundled`` is the one ``python -m venv`` ships, ``latest`` the newest) a fresh
virtual environment installs each extra of this checkout into an empty ``--target`` directory,
timed, with a time limit; pip's "looking at multiple versions" lines count its backtracking
steps. Then ``offload[lambda]`` is installed alone and measured without what the AWS Lambda
Python runtime already has (boto3 and what it depends on). Downloads come from pip's cache
after the first run, so the figures are mostly resolution and unpacking.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Distributions the Lambda Python runtime provides (boto3 and its dependencies).
RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "six", "urllib3"}
TIME_LIMIT = 600


def venv_with_pip(where: Path, pip: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    if pip != "bundled":
        spec = "pip" if pip == "latest" else f"pip=={pip}"
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--upgrade", spec],
            check=True,
            capture_output=True,
        )
    return python


def install(python: Path, requirement: str, target: Path) -> dict[str, Any]:
    start = time.monotonic()
    try:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--target", str(target), requirement],
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": TIME_LIMIT, "ok": False, "backtracking": None, "timeout": True}
    output = done.stdout + done.stderr
    return {
        "seconds": round(time.monotonic() - start, 1),
        "ok": done.returncode == 0,
        "backtracking": output.count("looking at multiple versions"),
        "timeout": False,
    }


def distribution_sizes(target: Path) -> dict[str, int]:
    """Bytes installed per distribution, from each one's RECORD."""
    sizes: dict[str, int] = {}
    for record in target.glob("*.dist-info/RECORD"):
        name = record.parent.name.split("-")[0].lower()
        total = 0
        for line in record.read_text().splitlines():
            path = target / line.split(",")[0]
            if path.is_file():
                total += path.stat().st_size
        sizes[name] = total
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pips", default="22.0.4,bundled,latest")
    parser.add_argument("--extras", default="aws,s3,all,demo")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="offload-install-") as tmp:
        for pip in args.pips.split(","):
            python = venv_with_pip(Path(tmp) / f"venv-{pip}", pip)
            version = subprocess.run(
                [str(python), "-m", "pip", "--version"], capture_output=True, text=True
            ).stdout.split()[1]
            for extra in args.extras.split(","):
                target = Path(tmp) / f"t-{pip}-{extra}"
                result = install(python, f"{ROOT}[{extra}]", target)
                rows.append({"pip": version, "extra": extra, **result})
                shutil.rmtree(target, ignore_errors=True)
                print(
                    f"pip {version:8} {extra:6} {result['seconds']:6.1f} s  "
                    f"{'ok' if result['ok'] else 'FAILED'}  backtracking: {result['backtracking']}",
                    flush=True,
                )
        python = venv_with_pip(Path(tmp) / "venv-lambda", "latest")
        target = Path(tmp) / "lambda"
        lambda_install = install(python, f"{ROOT}[lambda]", target)
        sizes = distribution_sizes(target)
    beyond = {name: size for name, size in sizes.items() if name not in RUNTIME}
    total = sum(beyond.values())
    print(
        f"offload[lambda]: {total / 2**20:.1f} MiB beyond the runtime's boto3 "
        f"({', '.join(f'{n} {s / 2**20:.1f}' for n, s in sorted(beyond.items()))}); "
        f"{sum(sizes.values()) / 2**20:.1f} MiB with boto3's own"
    )
    if args.json:
        report = {"resolution": rows, "lambda": {"install": lambda_install, "sizes": sizes}}
        args.json.write_text(json.dumps(report, indent=2))
    failed = [r for r in rows if not r["ok"]] or not lambda_install["ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""What offload adds to a Lambda function's start, against boto3's own clients.

Usage::

    python benchmarks/lambda_start.py [--rounds 15] [--python PATH]

Without ``--python`` it makes a virtual environment holding only ``offload[lambda]`` (boto3,
no s3fs), as a function's deployment would. Each round starts two fresh interpreters, in
alternating order: one imports boto3 and makes an S3 and an SQS client (the baseline); the other
imports offload's Lambda handler module and makes an ``Offloader`` on an S3 store and an
``SqsTransport``, which make the same two clients. The figures are medians of the time from the
first import to the last object; the target is at most 40 ms over the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = """
import time; start = time.perf_counter()
import boto3
s3 = boto3.client("s3")
sqs = boto3.client("sqs")
print(time.perf_counter() - start)
"""
OURS = """
import time; start = time.perf_counter()
from offload_core import Offloader
from offload_transports.aws_lambda import batch_handler
from offload_transports.sqs import SqsTransport
offloader = Offloader("s3://payload-bucket")
queue = SqsTransport("https://sqs.us-east-1.amazonaws.com/123456789012/orders", offloader,
                     max_message_size=262144)
assert offloader.store.fs is None  # the boto3 store: no s3fs in this environment
print(time.perf_counter() - start)
"""
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "PATH": os.defpath,
}


def lean_python(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{ROOT}[lambda]"],
        check=True,
        capture_output=True,
    )
    return python


def measure(python: Path, rounds: int) -> tuple[float, float]:
    times: dict[str, list[float]] = {"baseline": [], "ours": []}
    for i in range(rounds):
        order = [("baseline", BASELINE), ("ours", OURS)]
        for name, code in order if i % 2 == 0 else reversed(order):
            done = subprocess.run(
                [str(python), "-c", code], capture_output=True, text=True, env=ENV, check=True
            )
            times[name].append(float(done.stdout))
    return statistics.median(times["baseline"]), statistics.median(times["ours"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--python", type=Path, help="an environment's python to measure in")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="offload-lambda-") as tmp:
        python = args.python or lean_python(Path(tmp) / "venv")
        baseline, ours = measure(python, args.rounds)
    extra = (ours - baseline) * 1000
    print(
        f"boto3's S3 and SQS clients: {baseline * 1000:.0f} ms; offload's handler module, "
        f"store and transport: {ours * 1000:.0f} ms; {extra:+.0f} ms "
        f"(target <= +40 ms: {'met' if extra <= 40 else 'MISSED'})"
    )
    return 0 if extra <= 40 else 1


if __name__ == "__main__":
    sys.exit(main())

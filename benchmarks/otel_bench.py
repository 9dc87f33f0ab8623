"""What tracing costs: SQS sends and round trips with ``offload_otel`` on vs off, on moto.

Usage::

    python benchmarks/otel_bench.py [--count 1000] [--rounds 41] [--size 10MiB] [--json out.json]

A moto server runs in a process of its own. In this process one :class:`SqsTransport` on an S3
store sends; "on" means :class:`offload_otel.Telemetry` enabled with the OpenTelemetry SDK as an
application would run it (every span sampled, a ``BatchSpanProcessor`` handing spans to an
exporter that drops them, metrics aggregated by an in-memory reader), "off" means no observer
registered. The two alternate in blocks in one process, so that the machine's drift hits both:

* **1 KiB sends**: ``--count`` sends each, in blocks of 20, the queue drained (untimed) after
  every block; the figure is the median send. Nothing may be stored.
* **round trips** of ``--size`` (random base64 text, stored): send, receive, read the verified
  payload, acknowledge; ``--rounds`` each, the figure is the median.

The overhead is on/off - 1 of the medians; the targets are <= 3 % (1 KiB) and <= 1 % (10 MiB).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
BLOCK = 20
MOTO_SERVER = """
import sys
from offload_core.testing.aws import MotoServer
server = MotoServer().start()
print(server.endpoint, flush=True)
sys.stdin.read()
server.stop()
"""


def _size(text: str) -> int:
    units = {"KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


class _Drop:
    """A span exporter that drops what it is given (the export itself is not measured)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def telemetry() -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from offload_otel import Telemetry

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_Drop()))  # type: ignore[arg-type]
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)


def alternate(
    run: Callable[[], list[float]], rounds: int, tracing: Any
) -> tuple[list[float], list[float]]:
    """``run`` with tracing off and on, in alternating rounds (which goes first alternates too)."""
    off: list[float] = []
    on: list[float] = []
    for i in range(rounds):
        for traced in (i % 2 == 0, i % 2 == 1):
            if traced:
                with tracing:
                    on += run()
            else:
                off += run()
    return off, on


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="1 KiB sends, on and off each")
    parser.add_argument("--rounds", type=int, default=41, help="round trips, on and off each")
    parser.add_argument("--size", default="10MiB", help="round-trip payload size")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    import boto3
    from botocore.config import Config

    from offload_core.offloader import Offloader
    from offload_transports.sqs import SqsTransport

    server = subprocess.Popen(
        [sys.executable, "-c", MOTO_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()
        options = {
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "endpoint_url": endpoint,
            "config": Config(retries={"mode": "standard", "total_max_attempts": 1}),
        }
        sqs = boto3.client("sqs", **options)
        s3 = boto3.client("s3", **options)
        bucket = f"otel-bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        storage = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        off = Offloader(f"s3://{bucket}/p", storage_options=storage, pointer_format="native")
        url = sqs.create_queue(QueueName="otel-bench")["QueueUrl"]
        queue = SqsTransport(url, off, client=sqs, wait_seconds=0, max_message_size=262_144)
        tracing = telemetry()
        small = b"x" * 1024

        def sends() -> list[float]:
            times = []
            for _ in range(BLOCK):
                start = time.perf_counter()
                result = queue.send(small)
                times.append(time.perf_counter() - start)
                assert result.pointer is None
            drain()
            return times

        def drain() -> None:
            while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ]
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)

        sends()  # warm up both paths: connections, lazy imports
        with tracing:
            sends()
        off_sends, on_sends = alternate(sends, max(1, args.count // BLOCK), tracing)
        stored = list(s3.list_objects_v2(Bucket=bucket).get("Contents", []))

        size = _size(args.size)
        payload = base64.b64encode(os.urandom(size * 3 // 4))[:size]

        def round_trip() -> list[float]:
            start = time.perf_counter()
            queue.send(payload)
            messages = []
            while not messages:
                messages = queue.receive(1, wait_seconds=1)
            (message,) = messages
            data = message.payload()
            message.ack()
            elapsed = time.perf_counter() - start
            assert len(data) == size
            return [elapsed]

        round_trip()
        off_trips, on_trips = alternate(round_trip, args.rounds, tracing)
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)

    def row(name: str, off: list[float], on: list[float], target: float) -> dict[str, Any]:
        m_off, m_on = statistics.median(off), statistics.median(on)
        return {
            "scenario": name,
            "runs": [len(off), len(on)],
            "median_off_ms": round(m_off * 1000, 3),
            "median_on_ms": round(m_on * 1000, 3),
            "overhead": round(m_on / m_off - 1, 4),
            "target": target,
            "met": m_on / m_off - 1 <= target,
        }

    rows = [
        row("1 KiB send", off_sends, on_sends, 0.03),
        row(f"{args.size} round trip", off_trips, on_trips, 0.01),
    ]
    print("| scenario | runs (off, on) | median off | median on | overhead | target |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['runs'][0]}, {r['runs'][1]} | {r['median_off_ms']} ms "
            f"| {r['median_on_ms']} ms | {r['overhead']:+.1%} | "
            f"<= {r['target']:.0%} {'met' if r['met'] else 'MISSED'} |"
        )
    print(f"objects stored by the 1 KiB sends: {len(stored)}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "stored_by_small": len(stored)}, indent=2))
    return 0 if not stored else 1


if __name__ == "__main__":
    sys.exit(main())

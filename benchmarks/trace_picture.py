"""The trace in the README: one payload published on SNS, read by a raw SQS subscriber and by a
Lambda function behind an enveloped subscription, on a moto server, traced by ``offload_otel``.

Usage::

    python benchmarks/trace_picture.py [--png benchmarks/results/trace.png]

Prints the spans as a tree (links shown as ``-> linked to``) and, with ``--png``, draws them as
a waterfall (needs matplotlib, in the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the Lambda event helpers


def run() -> list[Any]:
    from lambda_support import receive, sqs_event, subscribe
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from offload_core.offloader import Offloader
    from offload_core.testing.aws import MotoServer
    from offload_otel import Telemetry
    from offload_transports.aws_lambda import batch_handler
    from offload_transports.sns import SnsTransport
    from offload_transports.sqs import SqsTransport

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    payload = json.dumps({"lines": [f"order line {i:06d}" for i in range(40_000)]})
    with MotoServer() as moto:
        s3, sns, sqs = moto.client("s3"), moto.client("sns"), moto.client("sqs")
        s3.create_bucket(Bucket="payloads")
        off = Offloader(
            "s3://payloads/orders",
            storage_options=moto.storage_options(),
            compression="zstd",
            pointer_format="native",
        )
        topic = sns.create_topic(Name="orders")["TopicArn"]
        raw = sqs.create_queue(QueueName="billing")["QueueUrl"]
        enveloped = sqs.create_queue(QueueName="shipping")["QueueUrl"]
        subscribe(sns, sqs, topic, raw, raw=True)
        subscribe(sns, sqs, topic, enveloped, raw=False)
        publisher = SnsTransport(topic, off, client=sns)
        billing = SqsTransport(raw, off, client=sqs, wait_seconds=1)
        handler = batch_handler(off)(lambda data, record: None)
        for traced in (False, True):  # the first round warms connections and imports up
            with Telemetry(tracer_provider=provider) if traced else nullcontext():
                publisher.send(payload, attributes={"kind": "order"})
                for message in billing.receive():
                    message.payload()
                    message.ack()
                handler(sqs_event(receive(sqs, enveloped, 1), sqs, enveloped))
    return sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0)


def tree(spans: list[Any]) -> list[tuple[int, Any]]:
    """(depth, span) in display order: each span under its parent, roots by start time."""
    ids = {s.context.span_id for s in spans}
    children: dict[int | None, list[Any]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    out: list[tuple[int, Any]] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            out.append((depth, span))
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return out


def describe(spans: list[Any]) -> str:
    names = {s.context.span_id: s.name for s in spans}
    start = min(s.start_time for s in spans)
    lines = []
    for depth, span in tree(spans):
        ms = (span.end_time - span.start_time) / 1e6
        at = (span.start_time - start) / 1e6
        links = ", ".join(names.get(link.context.span_id, "?") for link in span.links)
        kind = span.kind.name.lower()
        lines.append(
            f"{'  ' * depth}{span.name} [{kind}] +{at:.1f} ms, {ms:.1f} ms"
            + (f"  -> linked to {links}" if links else "")
        )
    traces = {s.context.trace_id for s in spans}
    lines.append(f"{len(spans)} spans in {len(traces)} trace(s)")
    return "\n".join(lines)


def draw(spans: list[Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = tree(spans)
    start = min(s.start_time for s in spans)
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(rows) + 1.2))
    colors = {"producer": "#d95f02", "consumer": "#1b9e77", "client": "#7570b3"}
    for i, (depth, span) in enumerate(rows):
        left = (span.start_time - start) / 1e6
        width = max((span.end_time - span.start_time) / 1e6, 0.3)
        color = colors.get(span.kind.name.lower(), "#999999")
        ax.barh(i, width, left=left, color=color, height=0.7)
        label = "  " * depth + span.name + (" (linked to publish)" if span.links else "")
        ax.text(left + width + 1, i, label, va="center", fontsize=8)
    ax.set_yticks([])
    ax.invert_yaxis()
    ax.set_xlabel("ms since the publish started")
    ax.set_title("One SNS publish, a raw SQS consumer and a Lambda function (offload_otel)")
    end = max((s.end_time - start) / 1e6 for s in spans)
    ax.set_xlim(0, end * 1.45)
    handles = [Patch(color=c, label=k) for k, c in [*colors.items(), ("internal", "#999999")]]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--png", type=Path, help="also draw the waterfall here")
    args = parser.parse_args(argv)
    spans = run()
    print(describe(spans))
    if args.png:
        draw(spans, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())

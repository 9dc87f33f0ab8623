"""SNS publishing against raw boto3 and the official ``amazon-sns-extended-client``, on moto.

The scenarios of :mod:`run` for SNS; each runs in a subprocess of its own (``--child``), so that
its peak memory is its own and the official client's patching of ``boto3.Session`` stays in it.
The parent passes the endpoint and credentials in the environment (:func:`sqs_bench.aws_env`).

* **1 KiB**: raw boto3 ``publish`` and :meth:`SnsTransport.send`, alternating in one process;
  the official client's publishes in a process of their own. The figure is the median publish;
  no payload may be stored.
* **Large payloads**: one publish (payload stored, pointer published) after an untimed warm-up
  publish of a 293 KiB payload, with the same data and inputs as :mod:`sqs_bench`: the official
  client takes ``str``; ours takes ``bytes`` or a file, and compresses JSON with zstd. The topic
  has no subscriber: the timed part is the publisher's whole job. The stored payloads are
  removed afterwards, untimed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from sqs_bench import WARMUP, _memory, _peak_over, time_sends
from sqs_bench import run_child as _run_child

#: (label, data, client, input) of the large-payload runs, in table order.
LARGE = (
    ("official", "text", "official", "str"),
    ("ours", "text", "ours", "bytes"),
    ("ours, stream", "text", "ours", "file"),
    ("official", "json", "official", "str"),
    ("ours + zstd", "json", "ours-zstd", "bytes"),
    ("ours + zstd, stream", "json", "ours-zstd", "file"),
)


def _official(cfg: dict[str, Any]) -> Any:
    import boto3
    import sns_extended_client  # noqa: F401  (patches boto3.Session)

    sns = boto3.client("sns")
    sns.large_payload_support = cfg["bucket"]
    return sns


def _ours(cfg: dict[str, Any], compression: str | None = None) -> Any:
    import boto3

    from offload_core.offloader import Offloader
    from offload_transports.sns import SnsTransport

    off = Offloader(
        f"s3://{cfg['bucket']}/bench", compression=compression, storage_options=cfg["storage"]
    )
    topic = SnsTransport(cfg["topic"], off, client=boto3.client("sns"))
    topic.info  # the topic's limit is read once per transport; not part of a send  # noqa: B018
    return topic


def _empty_bucket(bucket: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])


def run_child(kind: str, cfg: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run one of this module's children (``small`` or ``large``) in a subprocess."""
    return _run_child(kind, cfg, env, script=__file__)


def child_small(cfg: dict[str, Any]) -> dict[str, Any]:
    """Alternating raw and offload publishes of 1 KiB; or the official client's, alone."""
    body, arn = "x" * 1024, cfg["topic"]
    if cfg["client"] == "official":
        official = _official(cfg)
        senders = {"official": lambda: official.publish(TopicArn=arn, Message=body)}
    else:
        topic = _ours(cfg)
        raw = topic.client
        senders = {
            "raw": lambda: raw.publish(TopicArn=arn, Message=body),
            "ours": lambda: topic.send(body),
        }
    out = time_sends(senders, cfg["warmup"], cfg["count"])
    if cfg["client"] != "official":
        out["stored"] = len(list(topic.offloader.store.list()))
    return out


def child_large(cfg: dict[str, Any]) -> dict[str, Any]:
    """One publish of the payload in ``cfg["source"]``."""
    source = Path(cfg["source"])
    size = source.stat().st_size
    arn = cfg["topic"]
    result: dict[str, Any] = {"size": size, "codec": "none", "stored_ratio": 1.0}
    if cfg["client"] == "official":
        sns = _official(cfg)
        sns.publish(TopicArn=arn, Message=WARMUP.decode())
        body = source.read_text()
        baseline, precise = _memory()
        start = time.perf_counter()
        sns.publish(TopicArn=arn, Message=body)
        seconds = time.perf_counter() - start
        peak = _peak_over(baseline, precise)
    else:
        topic = _ours(cfg, "zstd" if cfg["client"] == "ours-zstd" else None)
        topic.send(WARMUP)
        if cfg["io"] == "bytes":
            data = source.read_bytes()
            baseline, precise = _memory()
            start = time.perf_counter()
            sent = topic.send(data)
            seconds = time.perf_counter() - start
            peak = _peak_over(baseline, precise)
        else:
            with source.open("rb") as payload:
                baseline, precise = _memory()
                start = time.perf_counter()
                sent = topic.send(payload)
                seconds = time.perf_counter() - start
                peak = _peak_over(baseline, precise)
        pointer = sent.pointer
        assert pointer is not None, "a large payload must be stored"
        result["codec"] = pointer.codec
        result["stored_ratio"] = (pointer.stored_size or size) / size
    _empty_bucket(cfg["bucket"])
    return {**result, "seconds": seconds, "peak_mib": peak}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child = child_small if sys.argv[2] == "small" else child_large
        print(json.dumps(child(json.loads(sys.argv[3]))))
    else:
        sys.exit(f"usage: {sys.argv[0]} --child small|large CONFIG; run benchmarks/run.py")

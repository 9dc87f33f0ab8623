"""SQS end to end against raw boto3 and the official ``amazon-sqs-extended-client``, on moto.

Usage::

    python benchmarks/sqs_bench.py [--sizes 1KiB,10MiB,100MiB] [--repeat 3] [--json out.json]

One moto server (in this process) serves every run; each run is a subprocess, so that its peak
memory is its own and the official client's patching of ``boto3.Session`` stays in it.

* **1 KiB**: ``--count`` sends through raw boto3 ``send_message`` and through
  :class:`SqsTransport.send`, alternating in one process (the queue is drained every ten sends,
  untimed, so it stays shallow); the official client's sends run in a process of their own. The
  figure is the median send; no payload may be stored.
* **Large payloads**: send + receive + delete (message and payload), one message, after one
  untimed warm-up round trip of the payload's first 32 MiB (at least 293 KiB) on 256 KiB
  queues, so that every client's connections are open as in a process that keeps sending.
  The data is random base64 text (valid for every client; zstd gains little on it) or JSON
  records. The official client takes and returns ``str``; ours runs with ``bytes`` in and out,
  and with a file in and a file out (a verified stream copied to disk). On JSON ours
  compresses with zstd (native pointer format): at the codec's defaults (level 2, two worker
  threads), and streamed at level 1 on two worker threads (faster, for a little more stored);
  on text it writes the AWS format, as the official client does.

``--store-option name=value`` passes an option to our store (``read_concurrency=1``,
``concurrency=2``). On moto, where the network is a loopback, a ranged ``GetObject`` costs a
copy of the whole object, so parallel ranged reads are much slower than one stream there;
compression saves bytes that cost nothing to move.

Peak memory is the high-water RSS during the timed part minus the RSS just before it, after the
input was loaded (``str`` or ``bytes`` runs) or the file opened; read from ``/proc/self/status``
after resetting the high-water mark (``/proc/self/clear_refs``). Times are the fastest of
``--repeat`` runs, scenarios alternating between repeats.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline_bench import _reset_peak, _status_kib, make_json_like
from shaper import CONTROL_ENV, Wire

MIB = 1024 * 1024
#: One untimed round trip first, stored by every client (over the queues' 256 KiB limit), so
#: that connections, lazy imports and thread pools are in place before timing starts.
WARMUP = b"warm " * 60_000
#: The large runs warm up with the payload's first bytes, up to this many: enough for every
#: client to open the connections it sends and reads a large payload on, as in a process that
#: keeps sending (behind a network profile a new connection costs two round trips).
WARMUP_MAX = 32 * MIB
SIZES = {"KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB}
#: (label, data, client, input/output) of the large-payload runs, in table order.
LARGE = (
    ("official", "text", "official", "str"),
    ("ours", "text", "ours", "bytes"),
    ("ours, stream", "text", "ours", "file"),
    ("official", "json", "official", "str"),
    ("ours + zstd", "json", "ours-zstd", "bytes"),
    ("ours + zstd, stream", "json", "ours-zstd", "file"),
    ("ours + zstd level 1, 2 threads, stream", "json", "ours-zstd-fast", "file"),
)
#: Our clients of the large-payload runs: the Offloader's ``compression`` and
#: ``compression_options`` (keywords of :class:`offload_core.codecs.ZstdCodec`; none given:
#: its defaults, level 2 on two worker threads where two CPUs are available).
OURS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "ours": (None, {}),
    "ours-zstd": ("zstd", {}),
    "ours-zstd-fast": ("zstd", {"level": 1, "threads": 2}),
}


def parse_size(text: str) -> int:
    for unit, factor in SIZES.items():
        if text.endswith(unit):
            return int(text[: -len(unit)]) * factor
    return int(text)


def make_text(path: Path, size: int) -> None:
    """Random base64 lines: valid text, which zstd cannot shrink by much."""
    with path.open("wb") as out:
        written = 0
        while written < size:
            block = base64.encodebytes(os.urandom(6 * MIB))[: size - written]
            out.write(block)
            written += len(block)


# -- children: each runs one scenario and prints JSON ---------------------------------------


def _memory() -> tuple[int, bool]:
    baseline = _status_kib("VmRSS") or 0
    return baseline, _reset_peak()


def _peak_over(baseline: int, precise: bool) -> float:
    peak = _status_kib("VmHWM") if precise else None
    return ((peak or 0) - baseline) / 1024


def offloader(cfg: dict[str, Any], name: str = "ours") -> Any:
    """The Offloader of our client ``name`` (a key of :data:`OURS`) on ``cfg``'s bucket."""
    from offload_core.offloader import Offloader

    compression, options = OURS[name]
    return Offloader(
        f"s3://{cfg['bucket']}/bench",
        compression=compression,
        compression_options=options,
        storage_options=cfg["storage"],
    )


def _ours(cfg: dict[str, Any], client: Any, name: str = "ours") -> Any:
    from offload_transports.sqs import SqsTransport

    off = offloader(cfg, name)
    queue = SqsTransport(cfg["queue"], off, client=client, delete_payload=True)
    queue.info  # the queue's limit is read once per transport; not part of a send  # noqa: B018
    return queue


def time_sends(
    senders: dict[str, Callable[[], object]],
    warmup: int,
    count: int,
    every_fifth: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """The median time of each sender's call, the senders alternating in turn, after
    ``warmup`` untimed rounds; ``peak_mib`` is the peak RSS growth over the timed rounds.
    ``every_fifth`` runs (untimed) after every fifth round."""
    times: dict[str, list[float]] = {name: [] for name in senders}
    baseline, precise = 0, False
    for i in range(warmup + count):
        if i == warmup:
            baseline, precise = _memory()
        order = list(senders) if i % 2 else list(reversed(senders))
        for name in order:
            start = time.perf_counter()
            senders[name]()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
        if every_fifth is not None and i % 5 == 4:
            every_fifth()
    out: dict[str, Any] = {name: statistics.median(t) for name, t in times.items()}
    out["peak_mib"] = _peak_over(baseline, precise)
    return out


def child_small(cfg: dict[str, Any]) -> dict[str, Any]:
    """Alternating raw and offload sends of 1 KiB; or the official client's, alone."""
    import boto3

    body = "x" * 1024
    url = cfg["queue"]
    if cfg["client"] == "official":
        import sqs_extended_client  # noqa: F401  (patches boto3.Session)

        sqs = boto3.client("sqs")
        sqs.large_payload_support = cfg["bucket"]
        senders = {"official": lambda: sqs.send_message(QueueUrl=url, MessageBody=body)}
    else:
        sqs = boto3.client("sqs")
        queue = _ours(cfg, sqs)
        senders = {
            "raw": lambda: sqs.send_message(QueueUrl=url, MessageBody=body),
            "ours": lambda: queue.send(body),
        }
    out = time_sends(senders, cfg["warmup"], cfg["count"], every_fifth=lambda: _drain(sqs, url))
    _drain(sqs, url)
    if cfg["client"] != "official":
        out["stored"] = len(list(queue.offloader.store.list()))
    return out


#: The payload of the latency runs: just over SQS's 256 KiB, so every client stores it.
LATENCY_SIZE = 300_000


def child_latency(cfg: dict[str, Any]) -> dict[str, Any]:
    """``count`` round trips of a 300 KB message one after another (send, receive, read the
    payload, delete message and payload), each timed; the median (p50) and p90."""
    import boto3

    body = make_text_bytes(LATENCY_SIZE)
    url = cfg["queue"]
    if cfg["client"] == "official":
        import sqs_extended_client  # noqa: F401  (patches boto3.Session)

        sqs = boto3.client("sqs")
        sqs.large_payload_support = cfg["bucket"]
        sqs.delete_payload_from_s3 = True
        text = body.decode()

        def round_trip() -> None:
            sqs.send_message(QueueUrl=url, MessageBody=text)
            (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
            assert message["Body"] == text
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    else:
        queue = _ours(cfg, boto3.client("sqs"))

        def round_trip() -> None:
            queue.send(body)
            (message,) = queue.receive(1, wait_seconds=5)
            assert message.payload() == body
            message.ack()

    for _ in range(cfg["warmup"]):
        round_trip()
    times = []
    baseline, precise = _memory()
    for _ in range(cfg["count"]):
        start = time.perf_counter()
        round_trip()
        times.append(time.perf_counter() - start)
    times.sort()
    return {
        "seconds": statistics.median(times),
        "p90": times[min(len(times) - 1, int(0.9 * len(times)))],
        "peak_mib": _peak_over(baseline, precise),
    }


def make_text_bytes(size: int) -> bytes:
    """``size`` bytes of random base64 text."""
    return base64.b64encode(os.urandom(size))[:size]


def _drain(sqs: Any, url: str) -> None:
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def child_large(cfg: dict[str, Any]) -> dict[str, Any]:
    """One send + receive + delete of the payload in ``cfg["source"]``."""
    source = Path(cfg["source"])
    size = source.stat().st_size
    wire = Wire(os.environ.get(CONTROL_ENV))  # behind a network profile: what moved, timed
    if cfg["client"] == "official":
        import boto3
        import sqs_extended_client  # noqa: F401  (patches boto3.Session)

        sqs = boto3.client("sqs")
        sqs.large_payload_support = cfg["bucket"]
        sqs.delete_payload_from_s3 = True

        def round_trip(body: str) -> str:
            sqs.send_message(QueueUrl=cfg["queue"], MessageBody=body)
            (message,) = sqs.receive_message(QueueUrl=cfg["queue"], WaitTimeSeconds=5)["Messages"]
            sqs.delete_message(QueueUrl=cfg["queue"], ReceiptHandle=message["ReceiptHandle"])
            return str(message["Body"])

        round_trip(_warmup(source).decode())
        body = source.read_text()
        baseline, precise = _memory()
        wire.start()
        start = time.perf_counter()
        received = round_trip(body)
        seconds = time.perf_counter() - start
        wire.stop()
        peak = _peak_over(baseline, precise)
        assert received == body
        return {"seconds": seconds, "peak_mib": peak, "size": size, **wire.figures}

    import boto3

    queue = _ours(cfg, boto3.client("sqs"), cfg["client"])
    queue.send(_warmup(source))
    (warm,) = queue.receive(1, wait_seconds=5)
    warm.payload()
    warm.ack()
    output = Path(cfg["workdir"]) / f"out-{uuid.uuid4().hex}"
    if cfg["io"] == "bytes":
        data = source.read_bytes()
        baseline, precise = _memory()
        wire.start()
        start = time.perf_counter()
        sent = queue.send(data)
        (message,) = queue.receive(1, wait_seconds=5)
        got = message.payload()
        message.ack()
        seconds = time.perf_counter() - start
        wire.stop()
        peak = _peak_over(baseline, precise)
        assert got == data
    else:
        with source.open("rb") as payload:
            baseline, precise = _memory()
            wire.start()
            start = time.perf_counter()
            sent = queue.send(payload)
            (message,) = queue.receive(1, wait_seconds=5)
            with message.open() as stream, output.open("wb") as out:
                shutil.copyfileobj(stream, out, 8 * MIB)
            message.ack()
            seconds = time.perf_counter() - start
            wire.stop()
            peak = _peak_over(baseline, precise)
        assert output.stat().st_size == size
        output.unlink()
    assert list(queue.offloader.store.list()) == []  # the payload was deleted after the message
    pointer = sent.pointer
    return {
        "seconds": seconds,
        "peak_mib": peak,
        "size": size,
        "codec": pointer.codec if pointer else "-",
        "stored_ratio": (pointer.stored_size or size) / size if pointer else 1.0,
        **wire.figures,
    }


def _warmup(source: Path) -> bytes:
    """The first bytes of ``source`` (up to :data:`WARMUP_MAX`), or :data:`WARMUP` if fewer."""
    with source.open("rb") as file:
        head = file.read(WARMUP_MAX)
    return head if len(head) > len(WARMUP) else WARMUP


# -- the parent ----------------------------------------------------------------------------


def run_child(
    kind: str, cfg: dict[str, Any], env: dict[str, str], script: str = __file__
) -> dict[str, Any]:
    """Run ``script --child kind cfg`` (this module's children by default); its JSON result."""
    cmd = [sys.executable, script, "--child", kind, json.dumps(cfg)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode:
        raise RuntimeError(f"{kind} {cfg.get('client')} run failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def aws_env(
    endpoint: str,
    region: str,
    credentials: dict[str, str],
    *,
    s3_endpoint: str | None = None,
    config_file: Path | None = None,
) -> dict[str, str]:
    """This process's environment for the children, every AWS client sent to ``endpoint``
    (S3 clients to ``s3_endpoint`` if given), with ``config_file`` as their AWS config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
    }
    if s3_endpoint is not None:
        env["AWS_ENDPOINT_URL_S3"] = s3_endpoint
    if config_file is not None:
        env["AWS_CONFIG_FILE"] = str(config_file)
    return env


def unsigned_config(path: Path) -> Path:
    """An AWS config file turning off the SHA-256 of S3 request bodies for every boto3 client
    that reads it (the official clients' too), as HTTPS does."""
    path.write_text("[default]\ns3 =\n    payload_signing_enabled = false\n")
    return path


def new_queue(sqs: Any) -> str:
    """A fresh queue with SQS's default 256 KiB limit, so that every run starts empty."""
    name = f"bench-{uuid.uuid4().hex[:12]}"
    url: str = sqs.create_queue(QueueName=name, Attributes={"MaximumMessageSize": "262144"})[
        "QueueUrl"
    ]
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1KiB,10MiB,100MiB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario; fastest kept")
    parser.add_argument("--count", type=int, default=300, help="1 KiB sends per client")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--tmpdir", type=Path, default=None)
    parser.add_argument(
        "--store-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an option for our store (an integer or a string), e.g. read_concurrency=1",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, cfg = args.child
        children = {"small": child_small, "large": child_large, "latency": child_latency}
        result = children[kind](json.loads(cfg))
        print(json.dumps(result))
        return

    from offload_core.testing.aws import FAKE_CREDENTIALS, MotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    store_options = dict(_option(text) for text in args.store_option)
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "store_options": store_options,
    }
    with MotoServer() as moto, tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        env = aws_env(moto.endpoint, moto.region, FAKE_CREDENTIALS)
        sqs, bucket = moto.client("sqs"), f"bench-{uuid.uuid4().hex[:12]}"
        moto.client("s3").create_bucket(Bucket=bucket)
        storage = {**moto.storage_options(), **store_options}
        base = {"bucket": bucket, "storage": storage, "workdir": tmp}

        def queue() -> str:
            return new_queue(sqs)

        if 1024 in sizes:
            cfg = {**base, "count": args.count, "warmup": 20}
            ours = run_child("small", {**cfg, "client": "ours", "queue": queue()}, env)
            official = run_child("small", {**cfg, "client": "official", "queue": queue()}, env)
            report["small"] = {**ours, **official}
        large: dict[int, list[list[dict[str, Any]]]] = {}
        for size in (s for s in sizes if s > 1024):
            sources = {"text": Path(tmp) / "text.txt", "json": Path(tmp) / "records.jsonl"}
            make_text(sources["text"], size)
            make_json_like(sources["json"], size)
            runs: list[list[dict[str, Any]]] = [[] for _ in LARGE]
            for _ in range(args.repeat):
                for i, (_label, data, client, io) in enumerate(LARGE):
                    cfg = {**base, "client": client, "io": io, "source": str(sources[data])}
                    runs[i].append(run_child("large", {**cfg, "queue": queue()}, env))
            large[size] = runs
        report["large"] = {str(size): _rows(runs) for size, runs in large.items()}
    print_report(report, args.repeat)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def _option(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    return name, int(value) if value.isdigit() else value


def _rows(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    official: dict[str, float] = {}
    for (label, data, _client, io), results in zip(LARGE, runs, strict=True):
        best = min(results, key=lambda r: float(r["seconds"]))
        row = {**best, "label": label, "data": data, "io": io}
        row["peak_mib"] = max(r["peak_mib"] for r in results)
        row["all_seconds"] = [round(r["seconds"], 3) for r in results]
        if label == "official":
            official[data] = row["seconds"]
        row["vs_official"] = official[data] / row["seconds"]
        rows.append(row)
    return rows


def print_report(report: dict[str, Any], repeat: int) -> None:
    options = ", ".join(f"{k}={v}" for k, v in report["store_options"].items()) or "defaults"
    print(
        f"moto server on 127.0.0.1; Python {report['python']}, {report['cpus']} CPUs; "
        f"our store: {options}\n"
    )
    small = report.get("small")
    if small:
        overhead = small["ours"] / small["raw"] - 1
        print("| 1 KiB send, median | raw boto3 | offload | offload vs raw | official |")
        print("|---|---:|---:|---:|---:|")
        print(
            f"| {small.get('stored', 0)} payloads stored | {small['raw'] * 1e3:.2f} ms "
            f"| {small['ours'] * 1e3:.2f} ms | {overhead:+.1%} | {small['official'] * 1e3:.2f} ms |"
        )
        print()
    if report["large"]:
        print(
            f"send + receive + delete, fastest of {repeat}; peak RSS growth over the baseline\n\n"
            "| payload | data | client | in/out | stored as | seconds | speed vs official "
            "| peak RSS growth | / payload |"
        )
        print("|---|---|---|---|---|---:|---:|---:|---:|")
    for size, rows in report["large"].items():
        mib = int(size) / MIB
        for row in rows:
            stored = row.get("codec", "none")
            if "stored_ratio" in row and stored == "zstd":
                stored = f"zstd ({row['stored_ratio']:.2f})"
            print(
                f"| {mib:g} MiB | {row['data']} | {row['label']} | {row['io']} | {stored} "
                f"| {row['seconds']:.2f} | {row['vs_official']:.2f}x | {row['peak_mib']:.0f} MiB "
                f"| {row['peak_mib'] / mib:.2f} |"
            )


if __name__ == "__main__":
    main()

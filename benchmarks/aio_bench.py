"""asyncio: the asynchronous SQS transport, consumer loop and offloader against their baselines.

The scenarios run through ``run.py`` (``python benchmarks/run.py --only asyncio``), on moto
(loopback) or behind a network profile (SQS on moto, S3 on ``local_s3.py``, both through the
shaper), each measured in a child process of its own:

* **1 KiB sends** (``sends``): :meth:`AsyncSqsTransport.send` and raw aiobotocore
  ``send_message`` of the same 1 KiB body on the same client and event loop, alternating (the
  order swapped every round), after untimed warm-up sends; the queue is drained every five
  rounds, untimed, so it stays shallow. The figure is each one's median send; nothing may be
  stored.
* **Consumers** (``consume``): a queue filled beforehand (``fill``, in a process of its own)
  with payloads of incompressible bytes, each stored (every queue has SQS's default 256 KiB
  limit), plus a few untimed warm-up messages. The asynchronous consumer is one
  :func:`~offload_core.aio.consumer.consume` loop (32 messages in flight), its handler awaiting
  ``message.payload()``; the synchronous one is :class:`SqsTransport` receiving 10 messages,
  reading each payload in turn, acknowledging the batch, and again. The figure is the time to
  handle every message (messages per second), and the peak RSS growth of the process.
* **Concurrent resolves** (``resolve``): payloads stored beforehand (``store``, in a process of
  its own) read back at once on one event loop, ``asyncio.gather`` of
  :meth:`AsyncOffloader.read_pointer` over every pointer, each result dropped once its length
  is checked; against the synchronous :meth:`Offloader.read_pointer` of the same pointers one
  after another.

Peak memory is the high-water RSS during the timed part minus the RSS just before it (after
the warm-up), read from ``/proc/self/status`` after resetting the mark through
``/proc/self/clear_refs``. Behind a network profile the consumers and resolves count what the
shaper moved during their timed part (:class:`shaper.Wire`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline_bench import _reset_peak, _status_kib
from shaper import CONTROL_ENV, Wire
from sqs_bench import run_child as _run_child

KIB, MIB = 1024, 1024 * 1024
#: Messages in flight in the asynchronous consumer (``consume``'s default).
CONCURRENCY = 32
#: Untimed messages each consumer handles first (connections, threads and imports in place).
CONSUMER_WARMUP = 10
#: Untimed concurrent reads before the resolves are timed.
RESOLVE_WARMUP = 8


def offloader(cfg: dict[str, Any]) -> Any:
    """The Offloader of every scenario: ``cfg``'s bucket, no compression, sha256, native
    pointers (the payloads are binary; the AWS format carries text only)."""
    from offload_core.offloader import Offloader

    return Offloader(
        f"s3://{cfg['bucket']}/bench", pointer_format="native", storage_options=cfg["storage"]
    )


def run_child(kind: str, cfg: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run one of this module's children (``kind``) on ``cfg``; its JSON result."""
    return _run_child(kind, cfg, env, script=__file__)


# -- measuring ---------------------------------------------------------------------------------


def _memory() -> tuple[int, bool]:
    """The RSS now (KiB), after a collection, and whether the high-water mark was reset."""
    gc.collect()
    precise = _reset_peak()
    return _status_kib("VmRSS") or 0, precise


def _peak_over(baseline: int, precise: bool) -> float:
    """The high-water RSS over ``baseline`` in MiB (none if the process shrank meanwhile)."""
    peak = _status_kib("VmHWM") if precise else None
    return max(0.0, ((peak or 0) - baseline) / 1024)


async def _sqs_client() -> tuple[Any, Any]:
    """An aiobotocore SQS client (endpoint and credentials from the environment) and what
    closes it."""
    from offload_transports._aws import AsyncClients

    clients = AsyncClients("sqs", region_name=os.environ.get("AWS_DEFAULT_REGION"))
    return await clients.open("the asyncio benchmark"), clients


async def _drain(client: Any, url: str) -> None:
    while messages := (await client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)).get(
        "Messages"
    ):
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        await client.delete_message_batch(QueueUrl=url, Entries=entries)


def _empty(store: Any) -> int:
    """Delete every object of ``store`` (untimed clean-up); how many there were."""
    keys = [info.key for info in store.list()]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(store.delete, keys))
    return len(keys)


# -- children ----------------------------------------------------------------------------------


def child_sends(cfg: dict[str, Any]) -> dict[str, Any]:
    """Raw aiobotocore sends and :meth:`AsyncSqsTransport.send` of 1 KiB, alternating on one
    client and loop; each one's median, the peak RSS growth, and the payloads stored."""
    from offload_core.aio import AsyncOffloader
    from offload_transports.sqs import AsyncSqsTransport

    body = "x" * KIB
    url = cfg["queue"]
    off = offloader(cfg)

    async def main() -> dict[str, Any]:
        client, clients = await _sqs_client()
        face = AsyncOffloader(off)
        queue = AsyncSqsTransport(url, face, client=client)
        senders: dict[str, Callable[[], Awaitable[object]]] = {
            "raw": lambda: client.send_message(QueueUrl=url, MessageBody=body),
            "ours": lambda: queue.send(body),
        }
        times: dict[str, list[float]] = {name: [] for name in senders}
        baseline, precise = 0, False
        warmup = cfg["warmup"]
        try:
            for i in range(warmup + cfg["count"]):
                if i == warmup:
                    baseline, precise = _memory()
                order = list(senders) if i % 2 else list(reversed(senders))
                for name in order:
                    start = time.perf_counter()
                    await senders[name]()
                    if i >= warmup:
                        times[name].append(time.perf_counter() - start)
                if i % 5 == 4:
                    await _drain(client, url)
            peak = _peak_over(baseline, precise)
            await _drain(client, url)
        finally:
            await face.aclose()
            await clients.aclose()
        out: dict[str, Any] = {name: statistics.median(t) for name, t in times.items()}
        return out | {"peak_mib": peak, "sends": len(times["ours"])}

    out = asyncio.run(main())
    out["stored"] = len(list(off.store.list()))
    return out


def child_fill(cfg: dict[str, Any]) -> dict[str, Any]:
    """``count`` messages of ``size`` random bytes sent to ``queue``, ten per batch, each
    payload stored (untimed: the consumers' input)."""
    import boto3

    from offload_transports.sqs import SqsTransport

    queue = SqsTransport(cfg["queue"], offloader(cfg), client=boto3.client("sqs"))
    sent, start = 0, time.perf_counter()
    while sent < cfg["count"]:
        batch = [os.urandom(cfg["size"]) for _ in range(min(10, cfg["count"] - sent))]
        result = queue.send_batch(batch)
        if result.failed:
            raise RuntimeError(f"{len(result.failed)} messages of a batch were not sent")
        if any(r.pointer is None for r in result.successful):
            raise RuntimeError("a payload was sent inline: the consumers must read stored ones")
        sent += len(batch)
    return {"sent": sent, "seconds": time.perf_counter() - start}


def child_consume(cfg: dict[str, Any]) -> dict[str, Any]:
    """Handle ``count`` messages of ``queue`` (after ``warmup`` untimed ones) with the
    asynchronous consumer loop or the synchronous transport (``cfg["client"]``)."""
    off = offloader(cfg)
    run = _consume_async if cfg["client"] == "async" else _consume_sync
    out = run(cfg, off)
    out["deleted"] = _empty(off.store)
    return out


def _consume_async(cfg: dict[str, Any], off: Any) -> dict[str, Any]:
    from offload_core.aio import AsyncOffloader
    from offload_core.aio.consumer import consume
    from offload_transports.sqs import AsyncSqsMessage, AsyncSqsTransport

    size, wire = cfg["size"], Wire(os.environ.get(CONTROL_ENV))
    concurrency = cfg.get("concurrency", CONCURRENCY)

    async def handle(message: AsyncSqsMessage) -> None:
        data = await message.payload()
        if len(data) != size:
            raise RuntimeError(f"a payload of {len(data)} bytes, not {size}")

    async def main() -> dict[str, Any]:
        client, clients = await _sqs_client()
        face = AsyncOffloader(off)
        queue = AsyncSqsTransport(cfg["queue"], face, client=client, wait_seconds=2)

        async def run(limit: int) -> Any:
            return await consume(
                queue,
                handle,
                concurrency=concurrency,
                visibility_timeout=60,
                wait_seconds=2,
                limit=limit,
                idle_seconds=20,
            )

        try:
            warm = await run(cfg["warmup"])
            baseline, precise = _memory()
            wire.start()
            start = time.perf_counter()
            result = await run(cfg["count"])
            seconds = time.perf_counter() - start
            wire.stop()
            peak = _peak_over(baseline, precise)
        finally:
            await face.aclose()
            await clients.aclose()
        if warm.acknowledged != cfg["warmup"] or result.acknowledged != cfg["count"]:
            raise RuntimeError(f"handled {warm} and {result}, not {cfg['count']} messages")
        return {"seconds": seconds, "peak_mib": peak, "extended": result.extended}

    return asyncio.run(main()) | wire.figures


def _consume_sync(cfg: dict[str, Any], off: Any) -> dict[str, Any]:
    import boto3

    from offload_transports.sqs import SqsTransport

    size, wire = cfg["size"], Wire(os.environ.get(CONTROL_ENV))
    queue = SqsTransport(cfg["queue"], off, client=boto3.client("sqs"), wait_seconds=2)

    def handle(count: int) -> None:
        done = empty = 0
        while done < count:
            messages = queue.receive(min(10, count - done), visibility_timeout=60)
            if not messages:
                empty += 1
                if empty == 10:
                    raise RuntimeError(f"handled {done} messages of {count}: the queue is empty")
                continue
            for message in messages:
                data = message.payload()
                if len(data) != size:
                    raise RuntimeError(f"a payload of {len(data)} bytes, not {size}")
            del data
            if queue.acknowledge(messages):
                raise RuntimeError("SQS refused to delete messages")
            done += len(messages)

    handle(cfg["warmup"])
    baseline, precise = _memory()
    wire.start()
    start = time.perf_counter()
    handle(cfg["count"])
    seconds = time.perf_counter() - start
    wire.stop()
    return {"seconds": seconds, "peak_mib": _peak_over(baseline, precise)} | wire.figures


def child_store(cfg: dict[str, Any]) -> dict[str, Any]:
    """``count`` payloads of ``size`` random bytes stored, four at a time (untimed: the
    resolves' input); their pointers, written to ``cfg["pointers"]`` as JSON."""
    off = offloader(cfg)

    def store(_: int) -> dict[str, Any]:
        pointer = off.store_payload(os.urandom(cfg["size"]))
        return dataclasses.asdict(pointer)

    with ThreadPoolExecutor(4) as pool:
        pointers = list(pool.map(store, range(cfg["count"])))
    Path(cfg["pointers"]).write_text(json.dumps(pointers, default=str))
    return {"stored": len(pointers)}


def _pointers(cfg: dict[str, Any]) -> list[Any]:
    from offload_core.pointer import Pointer

    fields = json.loads(Path(cfg["pointers"]).read_text())
    for pointer in fields:
        if pointer.get("expires") or pointer.get("signature"):
            raise RuntimeError("the benchmark's pointers carry no expiry and no signature")
    return [Pointer(**f) for f in fields]


def child_resolve(cfg: dict[str, Any]) -> dict[str, Any]:
    """Every pointer read at once on one loop (``cfg["client"] == "async"``), or one after
    another with the synchronous offloader; each payload dropped once its length is checked."""
    off = offloader(cfg)
    pointers = _pointers(cfg)
    size, wire = cfg["size"], Wire(os.environ.get(CONTROL_ENV))

    def check(data: bytes) -> int:
        if len(data) != size:
            raise RuntimeError(f"a payload of {len(data)} bytes, not {size}")
        return len(data)

    if cfg["client"] == "sync":
        for pointer in pointers[:2]:
            check(off.read_pointer(pointer))
        baseline, precise = _memory()
        wire.start()
        start = time.perf_counter()
        total = sum(check(off.read_pointer(pointer)) for pointer in pointers)
        seconds = time.perf_counter() - start
        wire.stop()
        return {"seconds": seconds, "peak_mib": _peak_over(baseline, precise), "bytes": total} | (
            wire.figures
        )

    from offload_core.aio import AsyncOffloader

    async def main() -> dict[str, Any]:
        face = AsyncOffloader(off)

        async def one(pointer: Any) -> int:
            return check(await face.read_pointer(pointer))

        try:
            await asyncio.gather(*(one(p) for p in pointers[:RESOLVE_WARMUP]))
            baseline, precise = _memory()
            wire.start()
            start = time.perf_counter()
            total = sum(await asyncio.gather(*(one(p) for p in pointers)))
            seconds = time.perf_counter() - start
            wire.stop()
            peak = _peak_over(baseline, precise)
        finally:
            await face.aclose()
        return {"seconds": seconds, "peak_mib": peak, "bytes": total}

    return asyncio.run(main()) | wire.figures


def child_clean(cfg: dict[str, Any]) -> dict[str, Any]:
    """Delete every object of the benchmark's store."""
    return {"deleted": _empty(offloader(cfg).store)}


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "sends": child_sends,
    "fill": child_fill,
    "consume": child_consume,
    "store": child_store,
    "resolve": child_resolve,
    "clean": child_clean,
}


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "--child":
        sys.exit(f"usage: {sys.argv[0]} --child KIND CONFIG (run through benchmarks/run.py)")
    print(json.dumps(CHILDREN[sys.argv[2]](json.loads(sys.argv[3]))))

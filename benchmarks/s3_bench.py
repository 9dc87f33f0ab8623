"""Throughput and peak memory of the s3 backend against raw boto3 and plain s3fs, in one run
against one endpoint.

Usage::

    python benchmarks/s3_bench.py [--sizes 16,256,2048] [--repeat 2] [--json out.json]
                                  [--endpoint moto|local|both] [--unsigned]

Sizes are in MiB. For each size a payload file of random ASCII text is written to a temporary
directory (``--tmpdir``), then every scenario uploads it from the file and downloads it to
another file, each run in its own subprocess so that its peak memory is its own:

* ``boto3 object``: ``put_object(Body=file)`` and ``get_object`` streamed to the file;
* ``boto3 transfer``: ``upload_fileobj`` and ``download_fileobj`` (default ``TransferConfig``:
  8 MiB parts, 10 threads, ranged downloads); where ranged downloads are skipped (below),
  ``boto3 transfer, single GET`` downloads in one request instead;
* ``s3fs``: ``S3FileSystem.put_file`` and ``get_file``;
* ``store``: :class:`~offload_backends.s3.S3Store` alone (no digest), ``open_write`` and
  ``open_read`` with ``shutil.copyfileobj``;
* ``offload``: :class:`~offload_core.offloader.Offloader` over that store, the round trip an
  application makes: ``prepare(file)`` (sha256 of the payload, no compression, AWS pointer), then
  ``open(body, attributes)`` verified while copied to the file.

``store`` and ``offload`` run twice where the endpoint allows it: reading one ``GetObject``
stream (``read_concurrency=1``, like ``get_object``) and reading 8 MiB ranges four at a time
(the store's default, like ``download_fileobj``). They upload with a CRC32 per part
(``checksum_type="COMPOSITE"``), as boto3 does; ``offload stream, full-object CRC`` shows the
store's default, one CRC32 of the whole object, which moto completes by copying the object
twice more. Every store uses its defaults otherwise: 8 MiB parts, 4 uploads at once.

Throughput is the payload size over the time up plus the time down; ratios are against the
faster boto3 path of the same size. Peak memory is the high-water RSS of the subprocess during
each direction minus its RSS just before (after imports, client setup and one small request),
read from ``/proc/self/status`` after resetting the mark through ``/proc/self/clear_refs``.
Every scenario of a size runs once before any runs again; the fastest of ``--repeat`` runs is
kept, and the highest memory.

Endpoints (both plain HTTP on 127.0.0.1, so botocore signs every body with SHA-256, which HTTPS
in production skips; ``--unsigned`` turns that off for every client, to compare as over HTTPS):

* ``moto``: moto's server in its own process. It holds each request in memory and reads the
  whole object for every ranged GET, so ranged downloads (``boto3 transfer``, the ranged store
  runs) cost it O(size²) and are skipped above 256 MiB; single-stream downloads are compared.
* ``local``: :mod:`benchmarks.local_s3`, a few hundred lines of S3 over files (no checks, no
  metadata), as a second baseline when moto itself is the bottleneck.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from shaper import CONTROL_ENV, Wire

MIB = 1024 * 1024
BUCKET = "offload-bench"
HERE = Path(__file__).resolve().parent
#: Ranged downloads against moto re-read the whole object per range: skipped above this size.
MOTO_RANGED_LIMIT = 256 * MIB
#: (name, ranged reads): the scenarios in table order.
SCENARIOS: tuple[tuple[str, bool], ...] = (
    ("boto3 object", False),
    ("boto3 transfer", True),
    ("boto3 transfer, single GET", False),
    ("s3fs", False),
    ("store stream", False),
    ("store ranged", True),
    ("offload stream", False),
    ("offload ranged", True),
    ("offload stream, full-object CRC", False),
)
#: (name, data): the scenarios behind a network profile (``run.py --network``), in table order.
#: ``offload`` is the Offloader with sha256 on the store at its defaults (what a user gets),
#: ``offload + zstd`` the same with zstd at the codec's defaults; ``boto3 transfer`` is what a
#: user would pick instead (``upload_fileobj``/``download_fileobj``, default ``TransferConfig``).
SHAPED_SCENARIOS: tuple[tuple[str, str], ...] = (
    ("boto3 object", "random"),
    ("boto3 transfer", "random"),
    ("offload", "random"),
    ("boto3 transfer", "json"),
    ("offload + zstd", "json"),
)
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


# -- the child: one scenario, one direction at a time, measured ------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> int:
    """Reset the high-water RSS mark; the current RSS, the baseline of what follows."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _status("VmRSS")


#: Behind a network profile, what the shaper moved during the timed parts.
WIRE = Wire(os.environ.get(CONTROL_ENV))


def _measure(action: Callable[[], object]) -> tuple[float, int]:
    idle = _reset_peak()
    WIRE.start()
    start = time.perf_counter()
    action()
    elapsed = time.perf_counter() - start
    WIRE.stop()
    return elapsed, _status("VmHWM") - idle


def _client_config(unsigned: bool) -> dict[str, Any]:
    """botocore ``Config`` arguments for every client. ``unsigned`` skips the body's SHA-256, as
    HTTPS does. moto takes longer than s3fs's 15 s read timeout to complete a 2 GiB multipart
    upload, and a retried completion fails there, so every client waits up to 5 minutes."""
    config: dict[str, Any] = {"read_timeout": 300}
    if unsigned:
        config["s3"] = {"payload_signing_enabled": False}
    return config


def _boto3_client(endpoint: str, unsigned: bool = False) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(**_client_config(unsigned))
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=config, **CREDENTIALS
    )


def _storage_options(endpoint: str, unsigned: bool) -> dict[str, Any]:
    return {
        "key": CREDENTIALS["aws_access_key_id"],
        "secret": CREDENTIALS["aws_secret_access_key"],
        "endpoint_url": endpoint,
        "client_kwargs": {"region_name": "us-east-1"},
        "config_kwargs": _client_config(unsigned),
    }


def run_scenario(
    name: str, endpoint: str, source: Path, target: Path, unsigned: bool
) -> dict[str, Any]:
    """Upload ``source`` and download it to ``target`` the way ``name`` does; times and peaks."""
    key = f"bench/{uuid.uuid4().hex}"
    client = _boto3_client(endpoint, unsigned)
    client.put_object(Bucket=BUCKET, Key="warm-up", Body=b"x")
    client.get_object(Bucket=BUCKET, Key="warm-up")["Body"].read()
    up: Callable[[], object]
    down: Callable[[], object]
    if name == "boto3 object":

        def up() -> None:
            with source.open("rb") as file:
                client.put_object(Bucket=BUCKET, Key=key, Body=file)

        def down() -> None:
            body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
            with target.open("wb") as file:
                shutil.copyfileobj(body, file, 8 * MIB)

    elif name.startswith("boto3 transfer"):
        from boto3.s3.transfer import TransferConfig

        # "single GET": objects below multipart_threshold are downloaded in one request.
        single = TransferConfig(multipart_threshold=source.stat().st_size + 1)
        download = single if name.endswith("single GET") else TransferConfig()
        client.download_fileobj(BUCKET, "warm-up", open(os.devnull, "wb"))  # noqa: SIM115

        def up() -> None:
            with source.open("rb") as file:
                client.upload_fileobj(file, BUCKET, key)

        def down() -> None:
            with target.open("wb") as file:
                client.download_fileobj(BUCKET, key, file, Config=download)

    elif name == "s3fs":
        import s3fs

        fs = s3fs.S3FileSystem(**_storage_options(endpoint, unsigned))
        fs.cat_file(f"{BUCKET}/warm-up")

        def up() -> None:
            fs.put_file(str(source), f"{BUCKET}/{key}")

        def down() -> None:
            fs.get_file(f"{BUCKET}/{key}", str(target))

    else:
        from offload_backends.s3 import S3Store
        from offload_core.offloader import Offloader

        options: dict[str, Any] = {}
        if name.endswith(("stream", "ranged", "CRC")):
            options["read_concurrency"] = 4 if name.endswith("ranged") else 1
            # Per-part CRC32 checksums, as boto3 uploads by default, except for the row that
            # shows the store's default: one CRC32 of the whole object (moto copies such an
            # object twice more to complete it; S3 does not).
            checksum_type: Literal["FULL_OBJECT", "COMPOSITE"] = (
                "FULL_OBJECT" if name.endswith("full-object CRC") else "COMPOSITE"
            )
            options["checksum_type"] = checksum_type
        # else ("offload", "offload + zstd"): the store's defaults.
        store = S3Store(f"s3://{BUCKET}/bench", **options, **_storage_options(endpoint, unsigned))
        with store.open_write("warm-up-store") as sink:
            sink.write(b"x")
        store.open_read("warm-up-store").close()
        relative = key.removeprefix("bench/")
        if name.startswith("store"):

            def up() -> None:
                with source.open("rb") as file, store.open_write(relative) as sink:
                    shutil.copyfileobj(file, sink, 8 * MIB)

            def down() -> None:
                with store.open_read(relative) as stream, target.open("wb") as file:
                    shutil.copyfileobj(stream, file, 8 * MIB)

        else:
            # The network profiles' rows ("offload", "offload + zstd") carry binary data: the
            # native pointer format; the loopback rows send text in the AWS format.
            shaped = name in (n for n, _ in SHAPED_SCENARIOS)
            off = Offloader(
                store,
                checksum="sha256",
                mode="always",
                compression="zstd" if "zstd" in name else None,
                pointer_format="native" if shaped else "aws",
            )
            sent: dict[str, Any] = {}

            def up() -> None:
                with source.open("rb") as file:
                    message = off.prepare(file)
                sent["body"], sent["attributes"] = message.body, message.attributes
                assert message.pointer is not None
                sent["key"] = store.key_for(message.pointer.location)
                sent["pointer"] = message.pointer

            def down() -> None:
                with (
                    off.open(sent["body"], sent["attributes"]) as stream,
                    target.open("wb") as file,
                ):
                    shutil.copyfileobj(stream, file, 8 * MIB)

            up_seconds, up_peak = _measure(up)
            down_seconds, down_peak = _measure(down)
            store.delete(sent["key"])
            result = _result(up_seconds, up_peak, down_seconds, down_peak, source, target)
            pointer = sent["pointer"]
            size = source.stat().st_size
            result["codec"] = pointer.codec
            result["stored_ratio"] = (pointer.stored_size or size) / size if size else 1.0
            return result
    up_seconds, up_peak = _measure(up)
    down_seconds, down_peak = _measure(down)
    client.delete_object(Bucket=BUCKET, Key=key)
    return _result(up_seconds, up_peak, down_seconds, down_peak, source, target)


def _result(
    up_seconds: float, up_peak: int, down_seconds: float, down_peak: int, source: Path, target: Path
) -> dict[str, Any]:
    if target.stat().st_size != source.stat().st_size or _digest(target) != _digest(source):
        raise RuntimeError("the downloaded file differs from the payload")
    target.unlink()
    figures = {"up_s": up_seconds, "down_s": down_seconds, "up_rss": up_peak, "down_rss": down_peak}
    return figures | WIRE.figures


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(8 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


# -- the parent: endpoints, payloads, runs, the table ----------------------------------------------

MOTO_SERVER = f"""
import sys, time
sys.path.insert(0, {str(HERE)!r})
from moto_keepalive import patch_moto_sqs
from offload_core.testing.aws import MotoServer
patch_moto_sqs()  # receives that do not slow down as a queue grows
server = MotoServer().start()
print(server.endpoint, flush=True)
sys.stdin.read()
server.stop()
"""


class Endpoint:
    """An S3 endpoint in its own process, stopped when its stdin closes."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        if kind == "moto":
            command = [sys.executable, "-c", MOTO_SERVER]
        elif kind == "moto-keepalive":  # moto behind a server that keeps connections open
            command = [sys.executable, str(HERE / "moto_keepalive.py")]
        else:
            command = [sys.executable, str(HERE / "local_s3.py"), str(root / "local-s3")]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # moto logs every request
            text=True,
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise RuntimeError(f"the {kind} endpoint did not start")
        _boto3_client(self.url).create_bucket(Bucket=BUCKET)

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


def make_payload(path: Path, size: int) -> None:
    """Random ASCII text: the AWS pointer format stores text, which AWS clients decode."""
    block = base64.b64encode(os.urandom(48 * MIB))
    with path.open("wb") as file:
        for start in range(0, size, len(block)):
            piece = block[: min(len(block), size - start)]
            file.write(b"%015d " % start + piece[16:])  # no two blocks alike


def run_child(
    name: str, endpoint: str, source: Path, target: Path, unsigned: bool
) -> dict[str, Any]:
    signing = "unsigned" if unsigned else "signed"
    command = [sys.executable, __file__, "--child", name, endpoint, str(source), str(target)]
    command.append(signing)
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def skipped(endpoint: Endpoint, name: str, ranged: bool, size: int) -> str | None:
    """Why ``name`` does not run at ``size``; ``""`` to leave it out of the table silently."""
    no_ranges = endpoint.kind == "moto" and size > MOTO_RANGED_LIMIT
    if ranged and no_ranges:
        return "moto re-reads the whole object for every ranged GET"
    if name.endswith("single GET") and not no_ranges:
        return ""  # only stands in for "boto3 transfer" where that cannot run
    return None


def bench(
    endpoint: Endpoint, sizes: list[int], repeat: int, tmp: Path, unsigned: bool
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for size in sizes:
        source, target = tmp / f"payload-{size}", tmp / f"out-{size}"
        make_payload(source, size)
        best: dict[str, dict[str, Any]] = {}
        for _ in range(repeat):
            for name, ranged in SCENARIOS:
                if skipped(endpoint, name, ranged, size) is not None:
                    continue
                result = run_child(name, endpoint.url, source, target, unsigned)
                print(f"  {endpoint.kind} {size // MIB} MiB {name}: {_summary(size, result)}")
                kept = best.setdefault(name, result)
                if result["up_s"] + result["down_s"] < kept["up_s"] + kept["down_s"]:
                    best[name] = {**result, "up_rss": kept["up_rss"], "down_rss": kept["down_rss"]}
                for field in ("up_rss", "down_rss"):
                    best[name][field] = max(best[name][field], result[field])
        source.unlink()
        boto3 = [best[n] for n in best if n.startswith("boto3")]
        fastest = min(r["up_s"] + r["down_s"] for r in boto3)
        for name, ranged in SCENARIOS:
            reason = skipped(endpoint, name, ranged, size)
            if reason == "":
                continue
            row: dict[str, Any] = {
                "endpoint": endpoint.kind,
                "body_signing": "off" if unsigned else "sha256",
                "size_mib": size // MIB,
                "scenario": name,
            }
            if reason:
                rows.append({**row, "skipped": reason})
                continue
            r = best[name]
            total = r["up_s"] + r["down_s"]
            rows.append(
                {
                    **row,
                    "up_mb_s": size / r["up_s"] / 1e6,
                    "down_mb_s": size / r["down_s"] / 1e6,
                    "round_trip_s": total,
                    "round_trip_mb_s": size / total / 1e6,
                    "vs_best_boto3": fastest / total,
                    "up_rss_mib": r["up_rss"] / MIB,
                    "down_rss_mib": r["down_rss"] / MIB,
                }
            )
    return rows


def _summary(size: int, result: dict[str, Any]) -> str:
    up, down = size / result["up_s"] / 1e6, size / result["down_s"] / 1e6
    peaks = f"+{result['up_rss'] / MIB:.0f}/+{result['down_rss'] / MIB:.0f} MiB"
    return f"up {up:.0f} MB/s, down {down:.0f} MB/s, {peaks}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| endpoint | body SHA-256 | MiB | scenario | up MB/s | down MB/s | round trip s "
        "| vs best boto3 | RSS up / down MiB |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        head = f"| {r['endpoint']} | {r['body_signing']} | {r['size_mib']} | {r['scenario']} |"
        if "skipped" in r:
            lines.append(f"{head} — | — | — | — | skipped: {r['skipped']} |")
            continue
        lines.append(
            f"{head} {r['up_mb_s']:.0f} | {r['down_mb_s']:.0f} | {r['round_trip_s']:.2f} | "
            f"{r['vs_best_boto3']:.2f} | {r['up_rss_mib']:.0f} / {r['down_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="16,256,2048", help="payload sizes in MiB")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--endpoint", choices=("moto", "local", "both"), default="moto")
    parser.add_argument(
        "--unsigned",
        action="store_true",
        help="no SHA-256 of request bodies (payload_signing_enabled=False), as over HTTPS",
    )
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    parser.add_argument("--tmpdir", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = [int(s) * MIB for s in args.sizes.split(",")]
    kinds = ("moto", "local") if args.endpoint == "both" else (args.endpoint,)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="s3-bench-") as tmp:
        for kind in kinds:
            endpoint = Endpoint(kind, Path(tmp))
            try:
                rows += bench(endpoint, sizes, args.repeat, Path(tmp), args.unsigned)
            finally:
                endpoint.close()
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, scenario, url, payload, output, signing = sys.argv
        result = run_scenario(scenario, url, Path(payload), Path(output), signing == "unsigned")
        print(json.dumps(result))
    else:
        main()

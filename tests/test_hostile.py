"""Hostile input: mutated real messages of every dialect, pointers naming places outside the
configured stores, and compressed payloads that lie.

Proved elsewhere and not repeated here:

- structural mutations of every JSON sample pointer through ``detect`` (typed errors only) and
  pointer round trips: ``test_formats_properties.py``; oversized bodies and SNS envelopes:
  ``test_detect.py``;
- every store refusing ``..``, absolute, backslash, NUL, control-character, drive and ``::`` keys
  before any I/O: ``offload_core.testing.backends.UNSAFE_KEYS`` in the conformance suite run by
  each ``test_backend_*.py``; symlinks out of a local root (file, directory, intermediate,
  dangling): ``test_backend_local.py``; chained and foreign locations refused by ``key_for`` of
  an fsspec store: ``test_backend_fsspec.py``;
- zstd frames declaring a huge size, windows above the limit, several frames sharing one limit,
  skippable frames, bombs read in one call: ``test_codecs.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_messages import FORMATS, load_sample, sample_names

from offload_backends.fsspec_store import FsspecStore
from offload_backends.local import LocalStore
from offload_backends.memory import MemoryStore
from offload_core.detect import inspect
from offload_core.errors import (
    IntegrityError,
    LocationNotAllowedError,
    OffloadError,
    PointerError,
)
from offload_core.formats.native import NativeFormat
from offload_core.message import Attribute
from offload_core.offloader import Offloader
from offload_core.pointer import Pointer

MiB = 1024 * 1024
SAMPLES = {name: load_sample(name) for name in sample_names()}


def detected(body: str | bytes, attributes: dict[str, Attribute]) -> Pointer | None:
    """What a consumer makes of a message: a pointer, or ``None`` for an inline one. Raises
    only the library's typed errors."""
    try:
        return inspect(body, attributes, FORMATS)[2]
    except OffloadError:
        return None


# -- fuzzing the pointer parser and envelope detection ----------------------------------------


@st.composite
def mutated_messages(draw: st.DrawFn) -> tuple[bytes, dict[str, Attribute]]:
    """A real message of some dialect with byte-level damage: bits flipped, bytes inserted,
    deleted or repeated, cut short; its attributes perhaps altered or dropped."""
    name = draw(st.sampled_from(sorted(SAMPLES)))
    body, attributes = SAMPLES[name]
    data = bytearray(body.encode())
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "repeat", "cut"]))
        if action == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(INSERTS))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif action == "repeat":
            piece = bytes(data[at : at + draw(st.integers(1, 32))])
            data[at:at] = piece * draw(st.integers(1, 50))
        elif action == "cut":
            del data[at:]
    attrs = dict(attributes)
    for key in list(attrs):
        choice = draw(st.sampled_from(["keep", "keep", "drop", "value"]))
        if choice == "drop":
            del attrs[key]
        elif choice == "value":
            attrs[key] = Attribute(
                attrs[key].data_type, draw(st.sampled_from(["", "-1", "1e999", "9" * 400, "x"]))
            )
    return bytes(data), attrs


#: Fragments that parsers trip over: nesting, huge numbers, escapes, chained and metadata URLs.
INSERTS = [
    b"[" * 64,
    b"{" * 64,
    b"1e999999",
    b"9" * 5000,
    b"\\ud800",
    b"NaN",
    b'"location":"file:///etc/passwd",',
    b"simplecache::",
    b"http://169.254.169.254/latest/meta-data/",
    b"\x00",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_messages(), st.booleans())
def test_mutated_real_messages_give_a_pointer_none_or_a_typed_error(
    message: tuple[bytes, dict[str, Attribute]], as_text: bool
) -> None:
    data, attributes = message
    body: str | bytes = data.decode("utf-8", "replace") if as_text else data
    try:
        found = inspect(body, attributes, FORMATS)[2]
    except OffloadError:
        return
    assert found is None or isinstance(found, Pointer)


@pytest.mark.parametrize(
    "body",
    [
        "[" * 200_000 + "]" * 200_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"offload_pointer":1,"size":' + "9" * 100_000 + "}",
        '{"offload_pointer":1,"size":1e999999}',
        '["software.amazon.payloadoffloading.PayloadS3Pointer",' + "[" * 100_000,
        json.dumps({"Type": "Notification", "Message": "[" * 100_000}),
        '{"offload_pointer":1,"location":"' + "a" * 900_000 + '"}',
    ],
    ids=["deep-list", "deep-object", "long-int", "huge-exponent", "aws-deep", "sns-deep", "long"],
)
def test_pathological_bodies_are_typed_errors_in_bounded_memory(body: str) -> None:
    tracemalloc.start()
    try:
        found = detected(body, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found is None
    assert peak < 16 * MiB, f"{peak / MiB:.1f} MiB for a {len(body) / MiB:.1f} MiB body"


# -- the local store: nothing outside the root is read or written -----------------------------


def snapshot(tree: Path, root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``tree`` outside ``root``, with its size and modification time."""
    found = {}
    for path in [tree, *tree.rglob("*")]:
        if path == root or root in path.parents:
            continue
        stat = path.lstat()
        found[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture
def jail(tmp_path: Path) -> tuple[Path, Path, Offloader]:
    """A local store's root beside a sentinel file and directory, and an offloader on it."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "sentinel").write_bytes(b"SECRET")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "sentinel").write_bytes(b"SECRET")
    (root / "link").symlink_to(tmp_path / "outside")
    (root / "file-link").symlink_to(tmp_path / "sentinel")
    return tmp_path, root, Offloader(LocalStore(f"file://{root}"), mode="always")


HOSTILE_KEYS = [
    "../sentinel",
    "a/../../sentinel",
    "%2e%2e/sentinel",
    "..\\sentinel",
    "a\\..\\..\\sentinel",
    "sentinel\x00.txt",
    "link/sentinel",
    "file-link",
    "link/new",
]


def pointer_to(location: str) -> str:
    """A native pointer message naming ``location`` (written by hand: the library's own writer
    refuses some of these locations)."""
    digest = hashlib.sha256(b"SECRET").hexdigest()
    pointer = Pointer("s3://placeholder/k", size=6, checksum="sha256", digest=digest)
    doc = json.loads(NativeFormat().encode(pointer).body)
    doc["location"] = location
    return json.dumps(doc)


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_pointers_out_of_a_local_root_read_nothing_there(
    jail: tuple[Path, Path, Offloader], key: str
) -> None:
    tmp_path, root, off = jail
    before = snapshot(tmp_path, root)
    for location in (f"file://{root}/{key}", f"{root}/{key}", f"file://{tmp_path}/sentinel"):
        with pytest.raises(OffloadError) as raised:
            off.resolve(pointer_to(location))
        assert "SECRET" not in str(raised.value)
    assert snapshot(tmp_path, root) == before


WRITTEN_KEYS = [k for k in HOSTILE_KEYS if not k.startswith("%")]  # "%2e%2e" is a plain name


@pytest.mark.parametrize("key", [*WRITTEN_KEYS, "/abs/sentinel", f"{os.sep}tmp{os.sep}x"])
def test_keys_out_of_a_local_root_write_nothing_there(
    jail: tuple[Path, Path, Offloader], key: str
) -> None:
    tmp_path, root, _ = jail
    off = Offloader(LocalStore(f"file://{root}"), mode="always", key_naming=lambda _: key)
    before = snapshot(tmp_path, root)
    with pytest.raises(OffloadError):
        off.prepare(b"written")
    assert snapshot(tmp_path, root) == before
    assert (tmp_path / "sentinel").read_bytes() == b"SECRET"
    assert (tmp_path / "outside" / "sentinel").read_bytes() == b"SECRET"


# -- URLs and fsspec chains in pointers never reach fsspec ------------------------------------


class RecordingFileSystem(MemoryFileSystem):
    """An in-memory fsspec filesystem that records every instantiation and every operation."""

    protocol = "offloadrec"
    root_marker = "/"
    #: Shared on purpose: fsspec caches instances, and a chain would make new ones.
    calls: ClassVar[list[str]] = []
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).calls.append(f"init {args} {kwargs}")
        super().__init__(*args, **kwargs)

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        public = callable(value) and not name.startswith("_")
        if public or name in ("_open", "_info", "_cat_file", "_ls"):
            type(self).calls.append(name)
        return value


@pytest.fixture
def recorded() -> Iterator[Offloader]:
    # Registered for the rest of the session (fsspec has no public way to unregister); the
    # protocol name is this module's own.
    fsspec.register_implementation("offloadrec", RecordingFileSystem, clobber=True)
    try:
        off = Offloader(FsspecStore("offloadrec://bucket/root"), mode="always")
        off.prepare(b"x" * 10)  # the store works
        RecordingFileSystem.calls.clear()
        yield off
    finally:
        RecordingFileSystem.store.clear()


@pytest.mark.parametrize(
    "location",
    [
        "simplecache::offloadrec://bucket/root/k",
        "offloadrec://bucket/root/k::http://169.254.169.254/latest/meta-data/",
        "blockcache::offloadrec://bucket/root/k",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/latest/api/token",
        "file:///etc/passwd",
        "/etc/passwd",
        "memory://bucket/root/k",
        "offloadrec://other/k",
        "offloadrec://bucket/root/../k",
        "offloadrec://bucket/rootx/k",
        "s3://bucket/root/k",
    ],
)
def test_pointers_with_urls_or_chains_never_reach_fsspec(
    recorded: Offloader, location: str
) -> None:
    with pytest.raises((LocationNotAllowedError, PointerError)):
        recorded.resolve(pointer_to(location))
    assert RecordingFileSystem.calls == []


def test_the_recording_filesystem_sees_a_pointer_that_is_allowed(recorded: Offloader) -> None:
    """The proof above can fail: a pointer into the store does reach fsspec."""
    message = recorded.prepare(b"y" * 10)
    assert recorded.resolve(message.body, message.attributes) == b"y" * 10
    assert RecordingFileSystem.calls != []


# -- compressed payloads that lie ---------------------------------------------------------------


def _rle_blocks(total: int, *, last: bool = True) -> bytes:
    """zstd RLE blocks of zeros adding up to ``total`` bytes (a few bytes each)."""
    out = bytearray()
    block = 128 * 1024
    while total > 0:
        size = min(block, total)
        total -= size
        end = 1 if last and total == 0 else 0
        out += ((size << 3) | (1 << 1) | end).to_bytes(3, "little") + b"\x00"
    return bytes(out)


def lying_frame(declared: int, actual: int) -> bytes:
    """A zstd frame whose header declares ``declared`` bytes and which decodes to ``actual``."""
    descriptor = bytes([0b1100_0000])  # 8-byte content size, not single-segment, no checksum
    window = bytes([(20 - 10) << 3])  # 1 MiB window
    return (
        b"\x28\xb5\x2f\xfd"
        + descriptor
        + window
        + declared.to_bytes(8, "little")
        + _rle_blocks(actual)
    )


def honest_frame(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize(
    "stored",
    [
        lying_frame(100, 64 * MiB),
        lying_frame(100, 100) + lying_frame(100, 64 * MiB),
        honest_frame(b"\x00" * 100) + lying_frame(0, 64 * MiB),
        honest_frame(b"\x00" * 100) + honest_frame(b"\x00" * 100),
        lying_frame(64 * MiB, 64 * MiB),
    ],
    ids=["lies-small", "second-frame-lies", "declares-zero", "two-honest-frames", "honest-big"],
)
def test_zstd_payloads_bigger_than_their_pointer_are_rejected_in_bounded_memory(
    stored: bytes,
) -> None:
    """The pointer says 100 bytes of zeros; the stored frames decode to more."""
    store = MemoryStore(f"memory://hostile-{uuid.uuid4().hex}")
    off = Offloader(store, compression="zstd", max_payload_size=32 * MiB)
    with store.open_write("k") as sink:
        sink.write(stored)
    pointer = Pointer(
        store.location("k"),
        size=100,
        stored_size=len(stored),
        codec="zstd",
        checksum="sha256",
        digest=hashlib.sha256(b"\x00" * 100).hexdigest(),
        dialect="native",
    )
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityError):
            off.read_pointer(pointer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB"


# -- a declared size is a claim: memory follows the bytes that arrive -------------------------

#: Run in a child whose address space is capped a little above what the interpreter already
#: uses, so that a buffer sized by a lying pointer fails the child instead of the test run.
LYING_SIZE_CHILD = r"""
import json, os, resource, sys
from offload_core.errors import OffloadError
from offload_core.offloader import Offloader
from offload_transports.aws_lambda import batch_handler, records

root, codec, real = sys.argv[1], sys.argv[2], int(sys.argv[3])
lies = [int(n) for n in sys.argv[4:]]
offloader = Offloader(f"file://{root}", mode="always", compression=codec, pointer_format="native")
data = (b"the real object is small; " * (real // 26 + 1))[:real]
honest = json.loads(offloader.prepare(data).body)

with open("/proc/self/status") as status:
    vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + 768 * 2**20, resource.RLIM_INFINITY))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def outcome(call):
    try:
        call()
    except OffloadError as exc:
        return type(exc).__name__
    except MemoryError:
        return "MemoryError"
    return "no error"

results = {}
for lie in lies:
    body = json.dumps({**honest, "size": lie})
    event = {"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": body,
                          "eventSource": "aws:sqs", "messageAttributes": {}, "attributes": {}}]}
    failed = batch_handler(offloader)(lambda payload, record: None)(event, None)
    results[str(lie)] = {
        "resolve": outcome(lambda: offloader.resolve(body)),
        "delivery": outcome(lambda: records(event, offloader)[0].payload()),
        "lambda": failed == {"batchItemFailures": [{"itemIdentifier": "m-1"}]},
    }
results["growth"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
results["honest"] = offloader.resolve(json.dumps(honest)) == data
print(json.dumps(results))
"""


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_a_lying_size_costs_the_real_size_not_the_claimed_one(tmp_path: Path, codec: str) -> None:
    """Pointers claiming 1, 4 and 15 GiB over a 3 MiB object, in a child limited to 768 MiB
    more address space: each read ends in ``SizeMismatchError`` (never ``MemoryError``), through
    ``Offloader.resolve``, ``Delivery.payload`` and the Lambda handler's default bytes mode,
    and the child's peak RSS grows by about the real size at most."""
    import subprocess
    import sys

    real = 3 * MiB
    lies = [2**30, 4 * 2**30, 15 * 2**30]
    args = [str(tmp_path), codec, str(real), *map(str, lies)]
    child = subprocess.run(
        [sys.executable, "-c", LYING_SIZE_CHILD, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    results = json.loads(child.stdout)
    assert results.pop("honest") is True
    growth = results.pop("growth")
    assert results == {
        str(lie): {"resolve": "SizeMismatchError", "delivery": "SizeMismatchError", "lambda": True}
        for lie in lies
    }
    # Stored raw, the object's own size bounds the buffer; compressed, growth starts at 8 MiB.
    allowance = 4 * MiB if codec == "none" else 40 * MiB
    assert growth < real + allowance, f"peak RSS grew by {growth / MiB:.0f} MiB"

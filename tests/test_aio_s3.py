"""The asynchronous face of the s3 and mrap stores (``S3Store.async_store()``) against the
session's moto server, over HTTP.

The store suite proves the face through :class:`~offload_core.testing.aio.BlockingStore`, on
a bucket (whole-object reads) and on a Multi-Region Access Point behind :class:`MrapRouter`
(sized reads). Then what only asyncio shows, each test on a loop of its own: a write
cancelled at each of its awaits leaves no object and no multipart upload, a cancelled or closed
read leaves no request running and no connection held, and every request runs on the caller's
thread and loop.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import test_backend_mrap
from test_backend_mrap import ARN, MrapRouter, mrap_store

from offload_backends.s3 import AsyncS3Store, S3Store
from offload_backends.s3_factory import open_store
from offload_core.aio import AsyncSource, AsyncStore, async_face
from offload_core.errors import PayloadNotFoundError, SizeMismatchError, TransientStorageError
from offload_core.testing import BackendConformance
from offload_core.testing.aio import BlockingStore, LoopThread
from offload_core.testing.aws import MotoServer

MiB = 1024 * 1024
PART = 5 * MiB

MakeStore = Callable[..., S3Store]


@pytest.fixture(scope="module")
def s3(moto_server: MotoServer) -> Any:
    """A boto3 client, to look at what the face did from outside."""
    return moto_server.client("s3")


@pytest.fixture
def make_store(moto_server: MotoServer, bucket: str) -> MakeStore:
    """Stores under a fresh prefix of the module's bucket; payloads over one smallest part go
    up in parts."""

    def make(**options: Any) -> S3Store:
        connection = {} if "client" in options else moto_server.storage_options()
        options = {"part_size": PART, "multipart_threshold": PART, **connection, **options}
        return S3Store(f"s3://{bucket}/{uuid.uuid4().hex}", **options)

    return make


@pytest.fixture(scope="module")
def session() -> Any:
    """One aiobotocore session (an s3fs storage option) for the many faces of the store
    suite: each face makes its client from it, without loading botocore's data again."""
    from aiobotocore.session import AioSession

    return AioSession()


class SizedBlockingStore(BlockingStore):
    """Every read told the size ``info`` gives, as the offloader tells it from the pointer."""

    def open_read(self, key: str) -> Any:
        return self.open_read_sized(key, self.info(key).size)


def blocking(
    store: S3Store, loop: LoopThread, kind: type[BlockingStore] = BlockingStore
) -> Iterator[BlockingStore]:
    """``store``'s asynchronous face as a synchronous store, its client released afterwards."""
    face = store.async_store()
    try:
        yield kind(face, loop)
    finally:
        loop.run(face.aclose())


# -- the store suite, through the asynchronous face ---------------------------------------------


class TestAsyncS3Store(BackendConformance):
    """Whole-object reads (the 20 MiB payload, written in four parts, read as ranges after the
    first response); the access point's suite below reads told the size."""

    supports_metadata = True

    @pytest.fixture
    def store(
        self, make_store: MakeStore, session: Any, loop_thread: LoopThread
    ) -> Iterator[BlockingStore]:
        yield from blocking(make_store(session=session), loop_thread)


#: The two buckets behind the access point, as the MRAP tests make them.
buckets = test_backend_mrap.buckets


@pytest.fixture(scope="module")
def routed_session(moto_server: MotoServer, buckets: tuple[str, str]) -> Any:
    """A session whose clients reach moto only through one :class:`MrapRouter`."""
    from aiobotocore.session import AioSession

    session = AioSession()
    MrapRouter(moto_server, buckets[0]).route(session)
    return session


class TestAsyncMrapStore(TestAsyncS3Store):
    """The whole contract through the access point's ARN (one bucket behind it, no lag), with
    reads told the object's size (as the offloader tells them): ranges from the first request
    on."""

    @pytest.fixture
    def store(self, routed_session: Any, loop_thread: LoopThread) -> Iterator[BlockingStore]:
        store = mrap_store(replication_wait=0, session=routed_session)
        yield from blocking(store, loop_thread, SizedBlockingStore)


def test_mrap_reads_wait_out_replication_lag(
    moto_server: MotoServer, buckets: tuple[str, str]
) -> None:
    """Two misses, then the replica has it: a whole-object read and, with its three ranges
    sent at once, a sized one."""
    router = MrapRouter(moto_server, *buckets, replicate_after=3)
    store = mrap_store(replication_wait=30)
    small, large = b"eventually here", os.urandom(3 * MiB)

    async def main() -> None:
        face = store.async_store()
        router.route((await face.client()).meta.events)
        for key, data in (("small", small), ("large", large)):
            await write(face, key, data)
        assert await read(face, "small") == small
        assert await read(face, "large", size=len(large)) == large
        await face.aclose()

    asyncio.run(main())
    assert router.reads[f"{store.prefix}/small"] == 3
    assert router.reads[f"{store.prefix}/large"] >= 3


# -- asyncio's own: the caller's loop, cancellation, closing ------------------------------------


async def write(face: AsyncStore, key: str, data: bytes) -> None:
    async with face.open_write(key) as sink:
        for start in range(0, len(data), MiB):
            await sink.write(data[start : start + MiB])


async def read(face: AsyncStore, key: str, size: int | None = None) -> bytes:
    source = await face.open_read(key, size=size)
    try:
        return await source.read()
    finally:
        await source.aclose()


async def read_exactly(source: AsyncSource, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := await source.read(size - len(data))):
        data += chunk
    return data


def others() -> set[asyncio.Task[Any]]:
    """The tasks running besides the test's own."""
    return asyncio.all_tasks() - {asyncio.current_task()}


async def settled() -> set[asyncio.Task[Any]]:
    """:func:`others`, once cancelled tasks have had a few turns of the loop to end."""
    for _ in range(10):
        if not others():
            break
        await asyncio.sleep(0)
    return others()


def connections_in_use(client: Any) -> int:
    """Connections the client's aiohttp sessions have handed out and not had back."""
    sessions = client._endpoint.http_session._sessions or {}
    return sum(len(session.connector._acquired) for session in sessions.values())


def uploads_in_progress(s3: Any, store: S3Store) -> list[Any]:
    found: list[Any] = s3.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix).get(
        "Uploads", []
    )
    return found


def test_async_face_gives_the_stores_own_face(make_store: MakeStore) -> None:
    for store in (make_store(), open_store(f"s3://{ARN}/p", key="k", secret="s")):
        face = async_face(store)
        assert type(face) is AsyncS3Store
        assert isinstance(face, AsyncStore)
        assert (face.url, face.location("a/b")) == (store.url, store.location("a/b"))


def test_a_multipart_round_trip_on_the_callers_loop_and_thread(
    make_store: MakeStore, s3: Any
) -> None:
    """20 MiB goes up as four parts with a full-object CRC, each body sent without waiting for
    ``100 Continue``, and comes back whole and as ranges; every request is sent from the
    thread whose loop awaits it."""
    store = make_store()
    data = os.urandom(20 * MiB)
    sent: list[tuple[str, int, dict[str, Any]]] = []

    def on_send(request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rpartition(".")[2]
        sent.append(
            (operation, threading.get_ident(), {k.lower(): v for k, v in request.headers.items()})
        )

    async def main() -> None:
        face = store.async_store()
        (await face.client()).meta.events.register("before-send.s3", on_send)
        await write(face, "k", data)
        assert await read(face, "k") == data
        assert await read(face, "k", size=len(data)) == data
        assert (await face.info("k")).size == len(data)
        await face.aclose()
        assert face.fs is None

    asyncio.run(main())
    operations = [operation for operation, _, _ in sent]
    assert operations.count("UploadPart") == 4
    assert {thread for _, thread, _ in sent} == {threading.get_ident()}
    assert not any("expect" in headers for _, _, headers in sent)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    head = s3.head_object(Bucket=store.bucket, Key=f"{store.prefix}/k", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (crc, "FULL_OBJECT")
    assert head["ETag"].endswith('-4"')


def test_a_store_on_a_boto3_client_awaits_its_threads(
    make_store: MakeStore, moto_server: MotoServer, s3: Any
) -> None:
    store = make_store(client=moto_server.client("s3"), read_concurrency=2)
    data = os.urandom(3 * PART)

    async def main() -> None:
        face = store.async_store()
        assert await face.client() is None
        await write(face, "k", data)
        assert await read(face, "k") == data
        assert await read(face, "k", size=len(data)) == data
        assert [item.key async for item in face.list()] == ["k"]
        with pytest.raises(SizeMismatchError):
            await face.open_read("k", size=len(data) - 1)
        await face.delete("k")
        with pytest.raises(PayloadNotFoundError):
            await face.open_read("k")
        assert others() == set()
        await face.aclose()

    asyncio.run(main())
    assert uploads_in_progress(s3, store) == []


@pytest.mark.parametrize(
    ("held", "size", "options", "undone"),
    [
        # Past the threshold, the parts wait for the upload being created: none went up.
        ("CreateMultipartUpload", 3 * PART, {}, ["CreateMultipartUpload", "AbortMultipartUpload"]),
        # One part at a time: the write waits for the first while it is being sent.
        ("UploadPart", 3 * PART, {"concurrency": 1}, ["AbortMultipartUpload"]),
        # The object is being made: it is, and is removed.
        ("CompleteMultipartUpload", 3 * PART, {}, ["CompleteMultipartUpload", "DeleteObject"]),
        ("PutObject", 1000, {}, ["PutObject", "DeleteObject"]),
    ],
    ids=["creating", "mid-parts", "completing", "putting"],
)
def test_a_write_cancelled_at_any_await_leaves_no_object_and_no_upload(
    make_store: MakeStore,
    s3: Any,
    held: str,
    size: int,
    options: dict[str, Any],
    undone: list[str],
) -> None:
    store = make_store(**options)
    data = os.urandom(size)
    answered: list[str] = []

    async def main() -> None:
        face = store.async_store()
        reached = asyncio.Event()

        async def hold(**_: Any) -> None:
            reached.set()
            await asyncio.sleep(0.3)

        client = await face.client()
        client.meta.events.register(f"before-send.s3.{held}", hold)
        client.meta.events.register("after-call.s3", lambda model, **_: answered.append(model.name))
        writing = asyncio.create_task(write(face, "k", data))
        await reached.wait()
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
        assert others() == set()  # the abort ran to its end before the cancellation went on
        with pytest.raises(PayloadNotFoundError):
            await face.info("k")
        assert connections_in_use(client) == 0
        await face.aclose()

    asyncio.run(main())
    assert answered[-len(undone) - 1 : -1] == undone  # and then the HeadObject above
    assert uploads_in_progress(s3, store) == []


def test_closing_a_read_early_stops_its_requests_and_gives_back_their_connections(
    make_store: MakeStore,
) -> None:
    """Ten ranges in flight, the read closed after its first bytes: whole-object reads (ranges
    after the first response) and sized reads (ranges from the first request), five times
    over; the client has as many connections as a read uses, so any kept would stall the
    next read."""
    store = make_store(config_kwargs={"max_pool_connections": 10})
    data = os.urandom(20 * MiB)

    async def main() -> None:
        face = store.async_store()
        client = await face.client()
        await write(face, "k", data)
        for size in [None, len(data)] * 5:
            source = await face.open_read("k", size=size)
            assert await source.read(1000) == data[:1000]
            await source.aclose()
            assert others() == set()
            assert connections_in_use(client) == 0
            with pytest.raises(ValueError, match="closed"):
                await source.read(1)
        assert await asyncio.wait_for(read(face, "k", size=len(data)), 30) == data
        await face.aclose()

    asyncio.run(main())


async def hold_ranges(face: AsyncS3Store, *, first: bool) -> None:
    """Have every ranged ``GetObject`` but (unless ``first``) the first range's never answer."""
    never = asyncio.Event()

    async def hold(request: Any, **_: Any) -> None:
        if first or not request.headers.get("Range", b"").startswith(b"bytes=0-"):
            await never.wait()

    (await face.client()).meta.events.register("before-send.s3.GetObject", hold)


def test_a_cancelled_read_stops_every_request_and_reads_no_further(
    make_store: MakeStore,
) -> None:
    """A sized read of ten ranges whose ranges after the first never answer: the read waiting
    for the second is cancelled, and every range request with it. The stream then fails rather
    than skip the bytes it lost."""
    store = make_store()
    data = os.urandom(10 * MiB)

    async def main() -> None:
        face = store.async_store()
        await write(face, "k", data)
        await hold_ranges(face, first=False)
        source = await face.open_read("k", size=len(data))
        assert await read_exactly(source, MiB) == data[:MiB]  # the first range
        reading = asyncio.create_task(source.read(MiB))
        await asyncio.sleep(0.1)
        assert not reading.done()
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        assert await settled() == set()
        assert connections_in_use(await face.client()) == 0
        with pytest.raises(TransientStorageError, match="interrupted"):
            await source.read(MiB)
        await source.aclose()
        await face.aclose()

    asyncio.run(main())


def test_a_cancelled_sized_open_stops_every_request(make_store: MakeStore) -> None:
    """Cancelled while it waits for the first of the ranges it sent at once."""
    store = make_store()

    async def main() -> None:
        face = store.async_store()
        await write(face, "k", b"x" * (10 * MiB))
        await hold_ranges(face, first=True)
        opening = asyncio.create_task(face.open_read("k", size=10 * MiB))
        await asyncio.sleep(0.1)
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        assert await settled() == set()
        assert connections_in_use(await face.client()) == 0
        await face.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("size", [300_000, 3 * MiB], ids=["one-get", "ranges"])
@pytest.mark.parametrize("claimed", [-1, 1], ids=["smaller", "larger"])
def test_a_sized_read_of_another_size_raises_at_open(
    make_store: MakeStore, size: int, claimed: int
) -> None:
    store = make_store()

    async def main() -> None:
        face = store.async_store()
        await write(face, "k", os.urandom(size))
        with pytest.raises(SizeMismatchError) as raised:
            await face.open_read("k", size=size + claimed)
        assert (raised.value.expected, raised.value.actual) == (size + claimed, size)
        assert raised.value.location == store.location("k")
        assert others() == set()
        await face.aclose()

    asyncio.run(main())


# The client left behind with its closed loop is reported by aiohttp when collected.
@pytest.mark.filterwarnings("ignore:Unclosed client session:ResourceWarning")
def test_a_face_belongs_to_one_open_loop_at_a_time(make_store: MakeStore) -> None:
    face = make_store().async_store()

    async def round_trip(close: bool = False) -> None:
        await write(face, "k", b"data")
        assert await read(face, "k") == b"data"
        if close:
            await face.aclose()

    with LoopThread() as other:
        other.run(round_trip())
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(round_trip())
        other.run(face.aclose())
    asyncio.run(round_trip())  # a new client on this loop, which then closes without aclose()
    asyncio.run(round_trip(close=True))  # that loop is gone: another new client

"""The asynchronous faces of the stores pass the same conformance suite as their synchronous
faces: each call of the suite is the asynchronous face's, awaited on an event loop of its own
(:class:`offload_core.testing.aio.BlockingStore`)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from offload_backends.local import LocalStore
from offload_backends.memory import MemoryStore
from offload_core.aio import ExecutorStore, InlineStore, async_face
from offload_core.errors import PayloadNotFoundError
from offload_core.testing import BackendConformance
from offload_core.testing.aio import BlockingStore, LoopThread


class TestMemoryStoreInline(BackendConformance):
    supports_metadata = True

    @pytest.fixture
    def store(self, loop_thread: LoopThread) -> BlockingStore:
        face = async_face(MemoryStore(f"memory://aio-{uuid.uuid4().hex}"))
        assert isinstance(face, InlineStore)
        return BlockingStore(face, loop_thread)


class TestLocalStoreOnAnExecutor(BackendConformance):
    @pytest.fixture
    def store(self, tmp_path: Path, loop_thread: LoopThread) -> BlockingStore:
        face = async_face(LocalStore(tmp_path.as_uri()))
        assert isinstance(face, ExecutorStore)
        return BlockingStore(face, loop_thread)


def test_a_cancelled_write_leaves_no_object_and_finishes_its_thread(tmp_path: Path) -> None:
    store = LocalStore(tmp_path.as_uri())
    face = ExecutorStore(store, max_workers=2)
    written = asyncio.Event()

    async def write() -> None:
        async with face.open_write("k") as sink:
            await sink.write(b"x" * 1024)
            written.set()
            await asyncio.sleep(30)

    async def main() -> None:
        task = asyncio.create_task(write())
        await written.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(PayloadNotFoundError):
            await face.info("k")
        assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []
        await face.aclose()

    asyncio.run(main())

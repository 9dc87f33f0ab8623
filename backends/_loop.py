"""One event loop on a daemon thread for the S3 store's requests on a boto3 client, and the calls
that wait for a coroutine on a loop from another thread (fsspec's I/O loop, for s3fs): how the
store's synchronous face drives the coroutines its asynchronous face awaits."""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

__all__ = ["io_loop", "run", "sync"]

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _forgotten_in_child() -> None:
    """A forked child has the parent's loop object but not its thread: start afresh."""
    global _loop, _lock
    _loop = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forgotten_in_child)


def io_loop() -> asyncio.AbstractEventLoop:
    """The process's loop for S3 requests, started on first use (a daemon thread)."""
    import asyncio

    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="offload-s3-io", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def run(loop: asyncio.AbstractEventLoop, flow: Coroutine[Any, Any, T]) -> T:
    """``await flow`` on ``loop``, from a thread that is not the loop's own."""
    import asyncio

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        flow.close()
        raise RuntimeError("a coroutine run from its loop's own thread would wait forever")
    return asyncio.run_coroutine_threadsafe(flow, loop).result()


def sync(
    loop: asyncio.AbstractEventLoop, fn: Callable[..., Awaitable[T]], *args: Any, **kw: Any
) -> T:
    """``await fn(*args, **kw)`` on ``loop``, from a thread that is not the loop's own."""

    async def call() -> T:
        return await fn(*args, **kw)

    return run(loop, call())

"""The one rule for a payload stored for a message that was not sent.

A publisher stores a payload, then sends the message that points to it. If the send fails for
certain (the service refused it, the connection was never made), nobody can ever read the
payload, so it is removed again (best effort). If the outcome is unknown (a read timeout, a
connection closed before the answer, an interrupted process: the service may have accepted the
message), the payload is kept, because a delivered message may point to it. Every send goes
through :func:`compensating_flow` (:func:`compensating` is the same rule for a synchronous
block): :meth:`Offloader.publish <offload_core.offloader.Offloader.publish>` and its
asynchronous twin, and the single and batch sends of every transport on either face.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

from .flow import run_sync

if TYPE_CHECKING:
    from .pointer import Pointer

__all__ = [
    "OutcomeRule",
    "compensating",
    "compensating_flow",
    "discard_all",
    "discarded",
    "is_outcome_unknown",
    "never_sent",
]

#: Tells from the exception a send raised whether the service may have accepted the message.
OutcomeRule = Callable[[BaseException], bool]


def is_outcome_unknown(exc: BaseException) -> bool:
    """The default rule: unknown for an interruption (``KeyboardInterrupt``, ``SystemExit``:
    not an ``Exception``) and for an error whose ``outcome_unknown`` attribute is true (as
    :class:`~offload_core.errors.TransportError` carries it); a definite failure otherwise."""
    return not isinstance(exc, Exception) or getattr(exc, "outcome_unknown", False) is True


def never_sent(exc: BaseException) -> bool:
    """The rule for failures before anything was sent (preparing a batch): never unknown."""
    return False


async def discarded(
    pointers: Iterable[Pointer | None], discard: Callable[[Pointer], Awaitable[object]]
) -> None:
    """Await ``discard`` for every stored payload among ``pointers``."""
    for pointer in list(pointers):
        if pointer is not None:
            await discard(pointer)


def discard_all(pointers: Iterable[Pointer | None], discard: Callable[[Pointer], object]) -> None:
    """``discard`` every stored payload among ``pointers``."""
    run_sync(discarded(pointers, _awaitable(discard)))


@contextmanager
def compensating(
    pointers: Iterable[Pointer | None],
    discard: Callable[[Pointer], object],
    unknown: OutcomeRule = is_outcome_unknown,
) -> Iterator[None]:
    """Inside the block the messages pointing to ``pointers`` are being sent: if it raises,
    their payloads are discarded, unless ``unknown`` says the outcome is unknown. ``pointers``
    is read only then, so a generator over a list still being filled sees all of it. (The
    rule is :func:`compensating_flow`'s, run at once.)"""
    block = compensating_flow(pointers, _awaitable(discard), unknown)
    run_sync(block.__aenter__())
    try:
        yield
    except BaseException as exc:
        run_sync(block.__aexit__(type(exc), exc, exc.__traceback__))
        raise
    run_sync(block.__aexit__(None, None, None))


def _awaitable(discard: Callable[[Pointer], object]) -> Callable[[Pointer], Awaitable[object]]:
    async def discarding(pointer: Pointer) -> object:
        return discard(pointer)

    return discarding


@asynccontextmanager
async def compensating_flow(
    pointers: Iterable[Pointer | None],
    discard: Callable[[Pointer], Awaitable[object]],
    unknown: OutcomeRule = is_outcome_unknown,
) -> AsyncIterator[None]:
    """:func:`compensating` for a flow (:mod:`offload_core.flow`): ``discard`` is awaited. A
    cancelled send (``CancelledError`` is not an ``Exception``) counts as outcome unknown."""
    try:
        yield
    except BaseException as exc:
        if not unknown(exc):
            await discarded(pointers, discard)
        raise

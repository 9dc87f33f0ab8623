"""What observers see of the claim check while it happens: operations that start and finish.

Each step (``publish``, ``prepare``, ``store``, ``send``, ``receive``, ``process``,
``resolve``, ``locate``, ``read``, ``verify``, ``delete``, ``ack``) is an :class:`Operation`
handed to the ``offload_started`` and ``offload_finished`` hooks; a tracing plugin makes a span
of each. Operations nest as the calls do (``store`` inside ``prepare`` inside ``publish``);
what an outer one knows (the transport, the destination, the message id) its inner ones
inherit. Publishers ask observers for a trace context to carry (``offload_inject``); consumers
hand observers the contexts their messages carried (:attr:`Operation.links`).

When no observer is registered, nothing is called and nothing is recorded: an operation is a
small object and the hooks are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from .plugins import Plugins

__all__ = ["Observer", "Operation", "OperationName", "current", "observing"]

OperationName = Literal[
    "publish",
    "prepare",
    "store",
    "send",
    "receive",
    "process",
    "resolve",
    "locate",
    "read",
    "verify",
    "delete",
    "ack",
]

_current: ContextVar[Operation | None] = ContextVar("offload_operation", default=None)
_BEGUN = "offload.begun"


@dataclass(eq=False, slots=True)
class Operation:
    """One step of the claim check, from start to finish.

    ``attributes`` grows as the step learns things (``size``, ``stored_size``, ``codec``,
    ``checksum``, ``pointer_format``, ``stored``, ``location``, ``body_size``,
    ``message_count``); ``error`` is set when it fails. Observers keep their own per-operation
    state (a span) in ``state``, under a key of their own.
    """

    name: OperationName
    parent: Operation | None = None
    #: The messaging system (``"aws_sqs"``, ``"aws.sns"``, ``"aws.eventbridge"``), if any.
    system: str | None = None
    destination: str | None = None
    message_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    #: The trace contexts the messages of this step carried (one per message), as text maps.
    links: list[Mapping[str, str]] = field(default_factory=list)
    error: BaseException | None = None
    started: float = field(default_factory=time.perf_counter)
    #: How long it took, once finished.
    seconds: float | None = None
    state: dict[object, Any] = field(default_factory=dict, repr=False)

    def find(self, name: Literal["system", "destination", "message_id"]) -> str | None:
        """This operation's ``name`` field, else the nearest enclosing operation's."""
        op: Operation | None = self
        while op is not None:
            value: str | None = getattr(op, name)
            if value is not None:
                return value
            op = op.parent
        return None


def current() -> Operation | None:
    """The operation under way in this context (thread or task), if one is observed."""
    return _current.get()


class observing(AbstractContextManager[Operation]):
    """Run the body as operation ``name``, nested in the current one (or ``parent=``); observers
    hear of its start and finish (with the error, if it raised). Unobserved, only the object is
    made, so that events still say which message a step was for."""

    __slots__ = ("_observed", "_op", "_plugins", "_token")

    def __init__(self, plugins: Plugins, name: OperationName, **fields: Any) -> None:
        self._plugins = plugins
        self._op = Operation(name, **fields)

    def __enter__(self) -> Operation:
        op = self._op
        if op.parent is None:
            op.parent = _current.get()
        self._token = _current.set(op)
        self._observed = self._plugins.observed
        if self._observed:
            self._plugins.started(op)
        return op

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        op = self._op
        _current.reset(self._token)
        if self._observed:
            op.error = error
            op.seconds = time.perf_counter() - op.started
            self._plugins.finished(op)


def begin(plugins: Plugins, name: OperationName, **fields: Any) -> Operation | None:
    """Start an operation that outlives the call (a stream being read); :func:`end` finishes
    it. It does not become the current one. ``None`` when nothing observes."""
    if not plugins.observed:
        return None
    op = Operation(name, **fields)
    if op.parent is None:
        op.parent = _current.get()
    op.state[_BEGUN] = True
    plugins.started(op)
    return op


def end(plugins: Plugins, op: Operation, error: BaseException | None = None) -> None:
    """Finish an operation :func:`begin` started (observers switched off since then hear of
    it too); any other operation is left alone."""
    if not op.state.pop(_BEGUN, False):
        return
    op.error = error
    op.seconds = time.perf_counter() - op.started
    plugins.finished(op)


class Observer:
    """Base of an observer plugin that is switched on and off at run time, never on import:
    subclasses implement observer hooks as methods (``@hookimpl``)."""

    _enabled_in: Plugins | None = None

    def enable(self: _O, plugins: Plugins | None = None) -> _O:
        """Start observing ``plugins`` (the process-wide ones by default); returns ``self``."""
        from .errors import ConfigurationError
        from .plugins import default_plugins

        if self._enabled_in is not None:
            raise ConfigurationError(f"{self!r} is already enabled; disable it first")
        plugins = plugins or default_plugins()
        plugins.register(self, name=f"{type(self).__name__}-{id(self):x}")
        self._enabled_in = plugins
        return self

    def disable(self) -> None:
        """Stop observing; what already started still finishes."""
        if self._enabled_in is not None:
            self._enabled_in.unregister(self)
            self._enabled_in = None

    def __enter__(self: _O) -> _O:
        return self if self._enabled_in is not None else self.enable()

    def __exit__(self, *exc: object) -> None:
        self.disable()


_O = TypeVar("_O", bound=Observer)

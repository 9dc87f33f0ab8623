"""The hooks a plugin may implement. Every hook name starts with ``offload_``.

Registration hooks receive a :class:`~offload_core.registry.Registrar`; call it once per object::

    from offload_core import hookimpl

    @hookimpl
    def offload_register_backends(register):
        register("mystore", "my_pkg.store:open_store", schemes=("mys",), extra="mystore")

Recognition hooks let a plugin read what an operator gives the command line in a service's own
shape (an event, a web address); the first plugin that recognises it answers.

Observer hooks receive frozen event objects (what happened) or
:class:`~offload_core.observe.Operation` objects (a step as it starts and finishes); they must
not raise: their errors are logged and swallowed so that metrics or tracing never break
delivery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .events import ErrorEvent, ResolvedEvent, SentEvent, StoredEvent
    from .observe import Operation
    from .ops import Message
    from .registry import Registrar

PROJECT = "offload"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def offload_register_backends(register: Registrar) -> None:
    """Register storage backends: ``register(name, target, schemes=(...), extra=...)``.

    The target is a factory ``(url: str, **options) -> Store`` (see :mod:`offload_core.store`).
    """


@hookspec
def offload_register_transports(register: Registrar) -> None:
    """Register transports (``sqs``, ``sns``, ``eventbridge`` ...) by name."""


@hookspec
def offload_register_pointer_formats(register: Registrar) -> None:
    """Register pointer formats: objects following :class:`offload_core.pointer.PointerFormat`."""


@hookspec
def offload_register_compressors(register: Registrar) -> None:
    """Register compressors: factories ``(**options) -> Codec`` (see :mod:`offload_core.codecs`)."""


@hookspec
def offload_register_checksums(register: Registrar) -> None:
    """Register checksum algorithms: callables returning a hashlib-like object."""


@hookspec
def offload_register_signers(register: Registrar) -> None:
    """Register pointer signers by key id: factories ``() -> Signer`` (see
    :mod:`offload_core.signing`), for example one backed by KMS ``GenerateMac``/``VerifyMac``.

    The factory is called when the key is first used, and the signer's ``key_id`` must be the
    name it is registered under.
    """


@hookspec
def offload_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``offload`` command line (a :class:`click.Group`)."""


@hookspec(firstresult=True)
def offload_read_messages(document: Mapping[str, Any]) -> Sequence[Message] | None:
    """The messages in a JSON object given to ``offload get`` or ``offload inspect`` (an event or
    a service's response, as :class:`~offload_core.ops.Message` values), or ``None`` when the
    plugin does not know its shape. A message that cannot be read raises
    :class:`~offload_core.errors.ConfigurationError` saying why."""


@hookspec(firstresult=True)
def offload_store_url_hint(url: str) -> str | None:
    """What to use instead of ``url``, an ``http(s)://`` address given as a store (the web
    address of a bucket), as the whole error message; ``None`` when the plugin does not
    recognise it."""


@hookspec
def offload_stored(event: StoredEvent) -> None:
    """A payload was stored and a pointer made for it."""


@hookspec
def offload_resolved(event: ResolvedEvent) -> None:
    """A pointer was dereferenced and its payload verified."""


@hookspec
def offload_error(event: ErrorEvent) -> None:
    """Storing or resolving a payload failed; ``event.error`` is the exception."""


@hookspec
def offload_sent(event: SentEvent) -> None:
    """A transport's message was accepted by the service (inline, or pointing to a payload)."""


@hookspec
def offload_started(operation: Operation) -> None:
    """A step of the claim check started (see :mod:`offload_core.observe`)."""


@hookspec
def offload_finished(operation: Operation) -> None:
    """A step finished; ``operation.error`` is set when it failed."""


@hookspec
def offload_inject(operation: Operation, carrier: dict[str, str]) -> None:
    """Add the trace context a message of ``operation`` (a ``publish``) should carry to
    ``carrier`` (text map: ``traceparent`` ...); the transport decides where it travels."""

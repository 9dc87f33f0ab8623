"""AWS Lambda consumers: the records of SQS, SNS and EventBridge events with their payloads
resolved and verified, and partial batch failures.

::

    from offload_core.offloader import Offloader
    from offload_transports.aws_lambda import Record, batch_handler

    @batch_handler(Offloader("s3://payloads/orders"))
    def handler(payload: bytes, record: Record) -> None:
        save(json.loads(payload))

Lambda calls ``handler(event, context)``; the function above is called once per record with the
payload. For an SQS event the result is ``{"batchItemFailures": [{"itemIdentifier": ...}]}``
naming the records whose payload could not be resolved or whose function raised (turn on
``ReportBatchItemFailures`` in the event source mapping), so only those are retried. SNS and
EventBridge invoke a function asynchronously and ignore its result, so a failed record there
raises instead, and Lambda retries the event, then hands it to the on-failure destination.

What each event gives:

- SQS: the message body; an SNS envelope (subscription without raw delivery) is unwrapped, and
  an EventBridge event delivered by a rule target yields its detail.
- SNS: the ``Sns.Message``, with the SNS message attributes (an EventBridge event a rule
  published to the topic yields its detail).
- EventBridge: the ``detail`` as JSON text, dereferenced when it carries a pointer.

On a FIFO queue, once a record of a message group fails, the group's later records are reported
failed without being tried, so the group's order holds. Each failure says whether retrying can
help (:attr:`RecordFailure.permanent`): a malformed pointer, a missing payload, a digest mismatch
or a location outside the allowed stores is permanent (after ``maxReceiveCount`` the queue moves
it to its dead-letter queue); throttling and timeouts are transient. A payload is never deleted:
other subscribers, retries and redrives need it until the store's lifecycle expires it.

A payload too large for the function's memory is read as a stream (``payload="stream"``: verified
as it is read; a stream not read to its end fails the record) or spooled to /tmp first
(``payload="spool"``: verified before the function sees it). For code that already runs
aws-lambda-powertools' ``BatchProcessor``, :func:`powertools_handler` makes the record handler.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast, overload

from offload_core.aio.delivery import AsyncDelivery
from offload_core.aws.events import AwsMessage, Service, event_messages
from offload_core.aws.trace import carrier_with_xray
from offload_core.delivery import Delivery, DeliveryCore
from offload_core.errors import OffloadError
from offload_core.events import ErrorEvent, ResolvedEvent, StoredEvent
from offload_core.flow import run_sync
from offload_core.hookspecs import hookimpl
from offload_core.message import Attribute
from offload_core.observe import Observer, observing
from offload_core.offloader import Offloader
from offload_core.pipeline import CHUNK_SIZE

from .eventbridge_detail import TRACE_MEMBER

if TYPE_CHECKING:
    import asyncio

    from offload_core.aio.offloader import AsyncOffloader

__all__ = [
    "AsyncRecord",
    "BatchOutcome",
    "LambdaHandler",
    "PayloadMode",
    "PowertoolsMetrics",
    "Record",
    "RecordFailure",
    "async_batch_handler",
    "async_powertools_handler",
    "async_process",
    "async_records",
    "batch_handler",
    "powertools_handler",
    "process",
    "records",
]

log = logging.getLogger(__name__)

#: What the function receives: the payload as bytes, a verifying stream, or a spooled file.
PayloadMode = Literal["bytes", "stream", "spool"]
#: A Lambda entry point: ``handler(event, context)``.
LambdaHandler = Callable[[Mapping[str, Any], Any], dict[str, Any]]

T = TypeVar("T")
#: A record of either face.
R = TypeVar("R", bound="RecordCore")

#: Spooled payloads stay in memory up to this size, then go to /tmp.
DEFAULT_SPOOL_MEMORY = 64 * 2**20


class RecordCore(DeliveryCore):
    """One record of a Lambda event, for both faces; its payload is read and verified only when
    asked for.

    A record that could not be read, or whose pointer is malformed, has :attr:`error` set and
    never yields a payload.
    """

    def __init__(
        self,
        offloader: Offloader,
        raw: Mapping[str, Any],
        *,
        source: Service,
        id: str,
        text: str,
        attributes: Mapping[str, Attribute] | None = None,
        group_id: str | None = None,
        event: Mapping[str, Any] | None = None,
        error: OffloadError | None = None,
    ) -> None:
        #: The record as Lambda delivered it (for EventBridge, the event itself).
        self.raw = raw
        #: Which service delivered the record: ``"sqs"``, ``"sns"`` or ``"eventbridge"``.
        self.source: Service = source
        #: The record's id, as ``batchItemFailures`` names it (SQS ``messageId``).
        self.id = id
        #: The FIFO message group, if any.
        self.group_id = group_id
        #: The EventBridge event the payload is the detail of (direct, or from an SQS body).
        self.event = event
        #: The Lambda context of the invocation that delivered the record, when known.
        self.context: Any = None
        self.message_id = id or None
        self.system = _SYSTEMS[source]
        self.destination = _destination(raw, source)
        super().__init__(offloader, text, attributes or {})
        if error is not None:  # a record that could not be read never yields a payload
            self._failed(error)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source} {self.id} {self._state()}>"

    @property
    def trace_context(self) -> dict[str, str]:
        """The publisher's trace context: its attributes, an SQS record's ``AWSTraceHeader``,
        and an EventBridge detail's ``traceContext`` member."""
        carried = super().trace_context
        if self.event is not None:
            detail = self.event.get("detail")
            member = detail.get(TRACE_MEMBER) if isinstance(detail, Mapping) else None
            if isinstance(member, Mapping):
                carried.update(
                    (k, v) for k, v in member.items() if isinstance(k, str) and isinstance(v, str)
                )
        attributes = self.raw.get("attributes") if self.source == "sqs" else None
        header = attributes.get("AWSTraceHeader") if isinstance(attributes, Mapping) else None
        return carrier_with_xray(carried, header if isinstance(header, str) else None)


class Record(RecordCore, Delivery):
    """One record of a Lambda event; its payload is read and verified only when asked for.

    A record that could not be read, or whose pointer is malformed, has :attr:`error` set and
    never yields a payload.
    """

    def spool(
        self, max_memory: int = DEFAULT_SPOOL_MEMORY, directory: str | None = None
    ) -> IO[bytes]:
        """The payload, verified to its end, in a file rewound to the start: in memory up to
        ``max_memory`` bytes, beyond that in ``directory`` (the temporary directory, /tmp on
        Lambda). The caller closes it; closing removes the file."""
        spooled = tempfile.SpooledTemporaryFile(max_size=max_memory, dir=directory)  # noqa: SIM115
        try:
            with self.open() as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    spooled.write(chunk)
            spooled.seek(0)
        except BaseException:
            spooled.close()
            raise
        return cast(IO[bytes], spooled)

    @functools.cached_property
    def json_body(self) -> Any:
        """The payload parsed as JSON (Powertools' name; the verified payload, not the pointer),
        read once."""
        return json.loads(self.payload())

    def json(self) -> Any:
        """The payload parsed as JSON (as :attr:`json_body`)."""
        return self.json_body


# -- reading events ------------------------------------------------------------------------

_SYSTEMS: dict[Service, str] = {
    "sqs": "aws_sqs",
    "sns": "aws.sns",
    "eventbridge": "aws.eventbridge",
}


def _destination(raw: Mapping[str, Any], source: Service) -> str | None:
    """The queue or topic ARN a record came from, as Lambda names it."""
    if source == "sqs":
        arn = raw.get("eventSourceARN")
    elif source == "sns":
        sns = raw.get("Sns")
        arn = sns.get("TopicArn") if isinstance(sns, Mapping) else None
    else:
        arn = None
    return arn if isinstance(arn, str) else None


def records(event: Mapping[str, Any], offloader: Offloader) -> list[Record]:
    """The records of an SQS, SNS or EventBridge event Lambda delivered, in order; a record
    that cannot be read (:mod:`offload_core.aws.events`) is kept, failed with its error."""
    return [_record(Record, message, offloader) for message in event_messages(event)]


def _record(kind: type[R], message: AwsMessage, offloader: Offloader) -> R:
    return kind(
        offloader,
        message.raw,
        source=message.service,
        id=message.id,
        text=message.body,
        attributes=message.attributes,
        group_id=message.group_id,
        event=message.event,
        error=message.error,
    )


# -- processing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordFailure:
    """A record reported failed: ``error`` is why, ``None`` when it was not tried because an
    earlier record of its FIFO message group failed."""

    item_identifier: str
    error: BaseException | None

    @property
    def permanent(self) -> bool:
        """Whether retrying cannot help: an offload error that is not retryable (bad pointer,
        missing or corrupt payload, location not allowed), or an error whose ``retryable`` is
        False. Skipped records and other errors count as transient."""
        if self.error is None:
            return False
        if isinstance(self.error, OffloadError):
            return not self.error.retryable
        return getattr(self.error, "retryable", True) is False


@dataclass(frozen=True)
class BatchOutcome(Generic[R]):
    """What became of each record of an event."""

    records: list[R]
    failures: list[RecordFailure]

    def response(self) -> dict[str, Any]:
        """The partial batch response Lambda reads for SQS event sources."""
        return {"batchItemFailures": [{"itemIdentifier": f.item_identifier} for f in self.failures]}

    def lambda_result(self) -> dict[str, Any]:
        """What a handler returns to Lambda: the partial batch response for SQS events; for
        SNS and EventBridge events (asynchronous invocations, whose result Lambda ignores) the
        first failed record's error is raised instead, so that Lambda retries the event."""
        asynchronous = any(r.source != "sqs" for r in self.records)
        if asynchronous and self.failures and self.failures[0].error is not None:
            raise self.failures[0].error
        return self.response()


def _checked(mode: PayloadMode) -> PayloadMode:
    if mode not in ("bytes", "stream", "spool"):
        raise ValueError(f"payload must be 'bytes', 'stream' or 'spool', not {mode!r}")
    return mode


def takes_context(fn: Callable[..., object]) -> bool:
    """Whether a record function takes the Lambda context: ``fn(payload, record, context)``,
    that is a third positional parameter without a default (or one named ``context`` or
    ``lambda_context``). ``*args`` wrappers and optional third parameters get two arguments."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) < 3:
        return False
    third = positional[2]
    return third.default is inspect.Parameter.empty or third.name in ("context", "lambda_context")


def _call(
    fn: Callable[..., T],
    record: Record,
    mode: PayloadMode,
    spool_memory: int = DEFAULT_SPOOL_MEMORY,
    with_context: bool = False,
) -> T:
    """``fn(payload, record)`` (or ``fn(payload, record, context)``) with the payload in the
    asked-for shape."""
    extra = (record.context,) if with_context else ()
    if mode == "bytes":
        return fn(record.payload(), record, *extra)
    if mode == "spool":
        with record.spool(spool_memory) as spooled:
            return fn(spooled, record, *extra)
    with record.open() as stream:
        result = fn(stream, record, *extra)
        record.check_deliverable()  # a stream not read to its verified end fails the record
    return result


def process(
    event: Mapping[str, Any],
    fn: Callable[..., object],
    offloader: Offloader,
    *,
    payload: PayloadMode = "bytes",
    spool_memory: int = DEFAULT_SPOOL_MEMORY,
    context: Any = None,
) -> BatchOutcome[Record]:
    """Call ``fn(payload, record)`` for each record of ``event`` (``fn(payload, record,
    context)`` when it takes three arguments); collect the failures. ``spool_memory`` is how
    much of a spooled payload stays in memory."""
    mode = _checked(payload)
    with_context = takes_context(fn)
    batch = records(event, offloader)

    async def attempt(record: Record) -> None:
        _call(fn, record, mode, spool_memory, with_context)

    return run_sync(settle(batch, attempt, context, _in_order))


async def _in_order(chains: list[Awaitable[None]]) -> None:
    for chain in chains:
        await chain


async def settle(
    batch: Sequence[R],
    attempt: Callable[[R], Awaitable[object]],
    context: Any,
    run: Callable[[list[Awaitable[None]]], Awaitable[None]],
    *,
    concurrently: bool = False,
) -> BatchOutcome[R]:
    """Attempt every record of ``batch`` under its ``process`` step and collect the failures,
    in record order. Records of one FIFO message group are attempted in order, and once one
    fails the group's later records are failed without being tried, so the group's order
    holds. ``concurrently``: records of different groups (and records without one) are given
    to ``run`` as separate chains, which it may await together; else one chain in order."""
    for record in batch:
        record.context = context
    failures: dict[int, RecordFailure] = {}
    failed_groups: set[str] = set()

    async def chain(indexed: list[tuple[int, R]]) -> None:
        for n, record in indexed:
            if record.group_id is not None and record.group_id in failed_groups:
                failures[n] = RecordFailure(record.id, None)
                continue
            try:
                with observing(record.offloader.plugins, "process", **record.operation_fields()):
                    await attempt(record)
            except Exception as exc:
                failures[n] = _failed(record, exc)
                if record.group_id is not None:
                    failed_groups.add(record.group_id)

    numbered = list(enumerate(batch))
    if not concurrently:
        await run([chain(numbered)])
    else:
        groups: dict[str, list[tuple[int, R]]] = {}
        for n, record in numbered:
            groups.setdefault(record.group_id or f"\0{n}", []).append((n, record))
        await run([chain(indexed) for indexed in groups.values()])
    return BatchOutcome(list(batch), [failures[n] for n in sorted(failures)])


def _failed(record: RecordCore, exc: Exception) -> RecordFailure:
    failure = RecordFailure(record.id, exc)
    if exc is not record.error:  # a record logs its own payload's failure
        log.warning(
            "record %s failed (%s): %s",
            record.id,
            "permanent" if failure.permanent else "transient",
            exc,
            exc_info=not isinstance(exc, OffloadError),
        )
    return failure


@overload
def batch_handler(
    offloader: Offloader, *, payload: Literal["bytes"] = "bytes", spool_memory: int = ...
) -> Callable[
    [Callable[[bytes, Record], object] | Callable[[bytes, Record, Any], object]], LambdaHandler
]: ...


@overload
def batch_handler(
    offloader: Offloader, *, payload: Literal["stream", "spool"], spool_memory: int = ...
) -> Callable[
    [Callable[[IO[bytes], Record], object] | Callable[[IO[bytes], Record, Any], object]],
    LambdaHandler,
]: ...


def batch_handler(
    offloader: Offloader,
    *,
    payload: PayloadMode = "bytes",
    spool_memory: int = DEFAULT_SPOOL_MEMORY,
) -> Callable[[Callable[..., object]], LambdaHandler]:
    """Turn ``fn(payload, record)`` into a Lambda handler ``(event, context)``; a function of
    three arguments also gets the context: ``fn(payload, record, context)`` (it is
    ``record.context`` too).

    For SQS events it returns the partial batch response; for SNS and EventBridge events
    (asynchronous invocations, whose result Lambda ignores) a failed record's error is raised.
    """
    mode = _checked(payload)

    def decorate(fn: Callable[..., object]) -> LambdaHandler:
        @functools.wraps(fn)
        def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
            return process(
                event, fn, offloader, payload=mode, spool_memory=spool_memory, context=context
            ).lambda_result()

        return handler

    return decorate


def powertools_handler(
    fn: Callable[..., T],
    offloader: Offloader,
    *,
    payload: PayloadMode = "bytes",
    spool_memory: int = DEFAULT_SPOOL_MEMORY,
) -> Callable[..., T]:
    """A record handler for aws-lambda-powertools' ``BatchProcessor(EventType.SQS)`` (or
    ``SqsFifoPartialProcessor``): it resolves the record's payload and calls
    ``fn(payload, record)`` (``fn(payload, record, context)`` for a function of three
    arguments, with the context the processor was given); an error fails that record, as the
    processor reports it.

    ::

        processor = BatchProcessor(event_type=EventType.SQS)
        record_handler = powertools_handler(handle, Offloader("s3://payloads"))

        def lambda_handler(event, context):
            return process_partial_response(event, record_handler, processor, context)
    """

    mode = _checked(payload)
    with_context = takes_context(fn)

    def handle(record: Any, lambda_context: Any = None) -> T:  # Powertools' parameter name
        raw = getattr(record, "raw_event", record)  # a Powertools data class, or a dict
        (ours,) = records({"Records": [raw]}, offloader)
        ours.context = lambda_context
        return _call(fn, ours, mode, spool_memory, with_context)

    return handle


# -- asyncio ---------------------------------------------------------------------------------


class AsyncRecord(RecordCore, AsyncDelivery):
    """A record whose payload is awaited: ``await record.payload()``, ``async with
    record.open() as stream``; the same checks as :class:`Record`."""

    _json: Any = None

    async def json(self) -> Any:
        """The payload parsed as JSON, read once."""
        if self._json is None:
            self._json = json.loads(await self.payload())
        return self._json


def async_records(event: Mapping[str, Any], offloader: AsyncOffloader) -> list[AsyncRecord]:
    """:func:`records`, as :class:`AsyncRecord`\\ s read through ``offloader``."""
    batch = [_record(AsyncRecord, m, offloader.offloader) for m in event_messages(event)]
    for record in batch:
        record._io = offloader.io
    return batch


AsyncMode = Literal["bytes", "stream"]


async def _acall(
    fn: Callable[..., Awaitable[object]], record: AsyncRecord, mode: AsyncMode, with_context: bool
) -> None:
    """``await fn(payload, record)`` with the payload as bytes or a verifying stream (which
    must be read to its verified end)."""
    extra = (record.context,) if with_context else ()
    if mode == "bytes":
        await fn(await record.payload(), record, *extra)
        return
    async with record.open() as stream:
        await fn(stream, record, *extra)
        record.check_deliverable()  # a stream not read to its verified end fails the record


async def async_process(
    event: Mapping[str, Any],
    fn: Callable[..., Awaitable[object]],
    offloader: AsyncOffloader,
    *,
    payload: AsyncMode = "bytes",
    concurrency: int = 10,
    context: Any = None,
) -> BatchOutcome[AsyncRecord]:
    """:func:`process` on asyncio: ``await fn(payload, record)`` for up to ``concurrency``
    records at once; records of one FIFO message group one after another, in order, the rest
    of the group failed untried once one fails (the same rule as the synchronous face)."""
    if payload not in ("bytes", "stream"):
        raise ValueError(f"payload must be 'bytes' or 'stream', not {payload!r}")
    import asyncio

    with_context = takes_context(fn)
    slots = asyncio.Semaphore(concurrency)

    async def attempt(record: AsyncRecord) -> None:
        async with slots:
            await _acall(fn, record, payload, with_context)

    async def together(chains: list[Awaitable[None]]) -> None:
        await asyncio.gather(*chains)

    batch = async_records(event, offloader)
    return await settle(batch, attempt, context, together, concurrently=True)


_loop: asyncio.AbstractEventLoop | None = None


def invocation_loop() -> asyncio.AbstractEventLoop:
    """The event loop the asynchronous handlers run invocations on: one per process, kept
    across invocations (a Lambda container is frozen and thawed, not restarted), so the
    clients an :class:`~offload_core.aio.AsyncOffloader` made on it stay usable."""
    import asyncio

    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop


def async_batch_handler(
    offloader: AsyncOffloader, *, payload: AsyncMode = "bytes", concurrency: int = 10
) -> Callable[[Callable[..., Awaitable[object]]], LambdaHandler]:
    """:func:`batch_handler` for ``async def fn(payload, record)``: the records of an event are
    handled ``concurrency`` at a time on :func:`invocation_loop`, with the same partial batch
    response and FIFO rules."""

    def decorate(fn: Callable[..., Awaitable[object]]) -> LambdaHandler:
        @functools.wraps(fn)
        def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
            processing = async_process(
                event, fn, offloader, payload=payload, concurrency=concurrency, context=context
            )
            return invocation_loop().run_until_complete(processing).lambda_result()

        return handler

    return decorate


def async_powertools_handler(
    fn: Callable[..., Awaitable[T]], offloader: AsyncOffloader, *, payload: AsyncMode = "bytes"
) -> Callable[..., Awaitable[T]]:
    """A record handler for aws-lambda-powertools' ``AsyncBatchProcessor(EventType.SQS)``: it
    resolves the record's payload and awaits ``fn(payload, record)``; an error fails that
    record, as the processor reports it::

        processor = AsyncBatchProcessor(event_type=EventType.SQS)
        record_handler = async_powertools_handler(handle, AsyncOffloader("s3://payloads"))

        def lambda_handler(event, context):
            return async_process_partial_response(event, record_handler, processor, context)
    """
    with_context = takes_context(fn)

    async def handle(record: Any, lambda_context: Any = None) -> T:
        raw = getattr(record, "raw_event", record)
        (ours,) = async_records({"Records": [raw]}, offloader)
        ours.context = lambda_context
        result: list[T] = []

        async def keep(*args: Any) -> None:
            result.append(await fn(*args))

        await _acall(keep, ours, payload, with_context)
        return result[0]

    return handle


class PowertoolsMetrics(Observer):
    """offload's numbers in an aws-lambda-powertools ``Metrics`` (CloudWatch EMF), flushed with
    the function's own metrics by ``@metrics.log_metrics``::

        metrics = Metrics(namespace="orders")
        PowertoolsMetrics(metrics).enable()

    Counts ``OffloadPayloadsStored``/``Resolved`` and ``OffloadErrors``; bytes
    ``OffloadBytesStored`` (after compression), ``OffloadBytesOriginal`` and
    ``OffloadBytesResolved``; milliseconds ``OffloadStoreTime`` and ``OffloadResolveTime``.
    """

    def __init__(self, metrics: Any) -> None:
        #: Anything with Powertools' ``add_metric(name=, unit=, value=)``.
        self.metrics = metrics

    def _add(self, name: str, unit: str, value: float) -> None:
        self.metrics.add_metric(name=name, unit=unit, value=value)

    @hookimpl
    def offload_stored(self, event: StoredEvent) -> None:
        self._add("OffloadPayloadsStored", "Count", 1)
        self._add("OffloadBytesStored", "Bytes", event.stored_size)
        self._add("OffloadBytesOriginal", "Bytes", event.size)
        self._add("OffloadStoreTime", "Milliseconds", event.seconds * 1000)

    @hookimpl
    def offload_resolved(self, event: ResolvedEvent) -> None:
        self._add("OffloadPayloadsResolved", "Count", 1)
        self._add("OffloadBytesResolved", "Bytes", event.size)
        self._add("OffloadResolveTime", "Milliseconds", event.seconds * 1000)

    @hookimpl
    def offload_error(self, event: ErrorEvent) -> None:
        self._add("OffloadErrors", "Count", 1)

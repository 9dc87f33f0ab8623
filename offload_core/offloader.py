"""The public façade: turn payloads into messages and messages back into verified payloads.

Transports sit on an :class:`Offloader`; applications may use it directly::

    off = Offloader("s3://payloads/orders", compression="zstd")
    msg = off.prepare(big_json, limits=Limits(max_size=262_144))
    sqs.send_message(QueueUrl=url, MessageBody=msg.body, ...)   # msg.attributes too
    ...
    data = off.resolve(received_body, received_attributes)       # bytes, verified
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeAlias, TypedDict, TypeVar, cast

from ._utf8 import require_utf8
from .codecs import Codec, Frozen
from .detect import detect, inspect
from .errors import (
    ConfigurationError,
    DecompressionLimitError,
    IncompatibleOptionsError,
    LocationNotAllowedError,
    MessageTooLargeError,
    OffloadError,
)
from .events import ErrorEvent, ResolvedEvent, StoredEvent
from .flow import SYNC, StoreIO, run_sync
from .message import Attribute, AttributeLike, OutgoingMessage, as_attributes
from .observe import Operation, begin, end, observing
from .pipeline import (
    CHUNK_SIZE,
    Payload,
    VerifyingReader,
    WriteResult,
    choose_codec,
    encode,
    iter_chunks,
    open_verified,
)
from .plugins import Plugins, default_plugins
from .pointer import EncodedPointer, Pointer, PointerFormat, Signature
from .policy import Limits, Mode, Policy
from .publishing import OutcomeRule, compensating, compensating_flow, is_outcome_unknown
from .signing import Signer, Signing
from .store import Store

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "RESERVED_ATTRIBUTES",
    "KeyRequest",
    "Offloader",
    "Payload",
    "PrepareOptions",
    "Received",
    "Sendable",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What a publisher may send: a :data:`~offload_core.pipeline.Payload`, or a ``dict`` or
#: ``list`` sent as compact JSON.
Sendable: TypeAlias = "Payload | Mapping[str, Any] | list[Any]"

#: The content type of ``dict`` and ``list`` payloads, sent as JSON.
JSON_TYPE = "application/json"

#: Bytes per read of a payload that is being compressed.
_COMPRESSED_READ = 1024 * 1024

#: Attribute names that pointer formats set; a caller may not use them.
RESERVED_ATTRIBUTES = frozenset({"ExtendedPayloadSize", "SQSLargePayloadSize", "S3MessageBodyKey"})

DEFAULT_MAX_PAYLOAD_SIZE = 16 * 2**30


class PrepareOptions(TypedDict, total=False):
    """What :meth:`Offloader.prepare` takes besides the payload: message ``attributes``, the
    destination's ``limits``, the ``content_type`` recorded in a stored payload's pointer, and
    the ``key`` a stored payload goes under."""

    attributes: Mapping[str, AttributeLike] | None
    limits: Limits | None
    content_type: str | None
    key: str | None


@dataclass(frozen=True)
class KeyRequest:
    """What a key-naming function knows when it names a new object."""

    now: datetime
    content_type: str | None = None
    #: Set when content-addressed keys are asked for: the payload's checksum name and digest.
    checksum: str | None = None
    digest: str | None = None


def default_key(request: KeyRequest) -> str:
    """``yyyy/mm/dd/<uuid4>``; content-addressed: ``<checksum>/<digest>``."""
    if request.digest is not None:
        return f"{request.checksum}/{request.digest}"
    return f"{request.now:%Y/%m/%d}/{uuid.uuid4()}"


@dataclass(frozen=True)
class Received:
    """A received message after unwrapping envelopes: inline body, or the pointer it carries."""

    body: str | bytes
    attributes: Mapping[str, Attribute] = field(default_factory=dict)
    pointer: Pointer | None = None

    @property
    def user_attributes(self) -> dict[str, Attribute]:
        """The attributes the publisher set, without the pointer formats' markers."""
        return {k: v for k, v in self.attributes.items() if k not in RESERVED_ATTRIBUTES}


class Offloader:
    """Stores payloads that do not fit a message, and reads them back, verified.

    :param store: where payloads go: a URL (``s3://bucket/prefix``, ``file:///srv/p``,
        ``memory://name``, any fsspec URL) or a :class:`~offload_core.store.Store`.
    :param compression: a registered compressor (``"zstd"``) or ``None``.
    :param checksum: digest of the original bytes carried in the pointer and verified on read.
    :param pointer_format: ``"aws"`` or ``"native"``; by default AWS for S3 stores without
        compression (readable by every AWS extended client), native otherwise.
    :param pointer_format_options: keyword arguments for the pointer format, such as
        ``{"extension_fields": False, "legacy_attribute": True}`` for the AWS format.
    :param allow: further stores whose locations a consumer may read; anything else is refused
        before any I/O. Each is a URL, a :class:`~offload_core.store.Store`, or a
        ``(url, storage_options)`` pair; a plain URL served by the same backend as ``store``
        shares ``storage_options`` (credentials, endpoint), any other gets none.
    :param aliases: location prefixes that pointers of other libraries name by a store's name
        rather than its address, mapped to store URLs: ``{"mqt://s3/": "s3://bucket/"}`` reads
        message-queue-toolkit's store ``s3`` from that bucket. The store must still be
        ``store`` or in ``allow``.
    :param storage_options: options for the backend of ``store`` when it is a URL, such as
        s3fs's ``endpoint_url``, ``profile`` or ``client_kwargs``.
    :param max_payload_size: hard cap on a payload read back (decompressed), in bytes.
    :param content_addressed: name objects by digest so a retried publish stores one object
        (needs bytes or a seekable file).
    :param sign_with: key id or :class:`~offload_core.signing.Signer` that signs new pointers
        (native format only); by default ``OFFLOAD_SIGNING_KEY_ID``, else unsigned.
    :param verify_with: key ids or signers trusted to verify received pointers; by default
        every key known (from plugins, ``OFFLOAD_SIGNING_KEYS`` and ``sign_with``). A pointer
        signed with a trusted key is always verified, expiry included.
    :param require_signatures: refuse unsigned pointers and pointers signed with untrusted
        keys, before any storage request.
    """

    def __init__(
        self,
        store: str | Store,
        *,
        compression: str | None = None,
        compression_options: Mapping[str, Any] | None = None,
        checksum: str = "sha256",
        pointer_format: str | None = None,
        pointer_format_options: Mapping[str, Any] | None = None,
        threshold: int | None = None,
        mode: Mode = "auto",
        allow: Iterable[str | Store | tuple[str, Mapping[str, Any]]] = (),
        aliases: Mapping[str, str] | None = None,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
        expires_after: timedelta | None = None,
        content_addressed: bool = False,
        key_naming: Callable[[KeyRequest], str] = default_key,
        storage_options: Mapping[str, Any] | None = None,
        sign_with: str | Signer | None = None,
        verify_with: Iterable[str | Signer] | None = None,
        require_signatures: bool = False,
        plugins: Plugins | None = None,
    ) -> None:
        self.plugins = plugins or default_plugins()
        self.store = self._open_store(store, storage_options)
        self.policy = Policy(mode=mode, threshold=threshold)
        self.checksum = checksum
        self.plugins.registry.get("checksum", checksum).load()  # fail now, not at first publish
        self.compression = compression or "none"
        self._codec: Codec = _configured(
            "compressor", self.plugins.get("compressor", self.compression), compression_options
        )
        self.signing = Signing.configure(
            self.plugins.registry,
            os.environ,
            sign_with=sign_with,
            verify_with=verify_with,
            require=require_signatures,
        )
        self.pointer_format = pointer_format or self._default_format()
        self._format: PointerFormat = _configured(
            "pointer format",
            self.plugins.get("pointer_format", self.pointer_format),
            pointer_format_options,
        )
        if not self._format.writable:
            raise IncompatibleOptionsError(f"pointer format {self.pointer_format!r} is read-only")
        # Fail at construction, not after an upload, if this format cannot point into this store
        # with this codec (the AWS format needs S3 and no compression) or carry a signature.
        probe = Pointer(
            self.store.location("probe"),
            size=0,
            codec=self.compression,
            dialect=self.pointer_format,
        )
        self._format.encode(probe)
        if self.signing.signer is not None:
            self._check_carries_signatures(probe, self.signing.signer.key_id)
        self.max_payload_size = max_payload_size
        self.expires_after = expires_after
        self.content_addressed = content_addressed
        self.key_naming = key_naming
        self._stores: list[Store] = [self.store]
        self._stores += [self._open_allowed(entry, storage_options) for entry in allow]
        self._aliases = _checked_aliases(aliases or {})
        for alias, target in self._aliases:
            if any(store.key_for(alias + "k") is not None for store in self._stores):
                raise ConfigurationError(
                    f"alias {alias!r} names locations a configured store already serves"
                )
            if not any(store.key_for(target + "k") is not None for store in self._stores):
                raise ConfigurationError(
                    f"alias {alias!r} -> {target!r}: the target is not the store or in allow=; "
                    "an alias trusts nothing by itself"
                )
        self._readers: list[PointerFormat] = self.plugins.pointer_readers()

    def _open_store(self, store: str | Store, options: Mapping[str, Any] | None) -> Store:
        if not isinstance(store, str):
            return store
        return self.plugins.open_store(store, **(options or {}))

    def _open_allowed(
        self, entry: str | Store | tuple[str, Mapping[str, Any]], shared: Mapping[str, Any] | None
    ) -> Store:
        """An ``allow`` entry's store: its own options, else ``store``'s for the same backend."""
        if isinstance(entry, tuple):
            url, options = entry
            return self._open_store(url, options)
        if isinstance(entry, str) and shared:
            backend = self.plugins.entry_for_url(entry)
            if backend.name != self.plugins.entry_for_url(self.store.url).name:
                shared = None
        return self._open_store(entry, shared)

    def _default_format(self) -> str:
        s3 = self.store.url.startswith("s3://")
        plain = self.compression == "none" and self.signing.signer is None
        return "aws" if s3 and plain else "native"

    def _check_carries_signatures(self, probe: Pointer, key_id: str) -> None:
        signed = replace(probe, signature=Signature(key_id, bytes(32)))
        encoded = self._format.encode(signed)
        decoded = self._format.decode(encoded.body, encoded.attributes)
        if decoded is None or decoded.signature != signed.signature:
            raise IncompatibleOptionsError(
                f"the {self.pointer_format!r} pointer format cannot carry signatures; use "
                "pointer_format='native' to sign (AWS extended clients could not check one)"
            )

    # -- publishing --------------------------------------------------------------------------

    def prepare(
        self,
        payload: Sendable,
        *,
        attributes: Mapping[str, AttributeLike] | None = None,
        limits: Limits | None = None,
        content_type: str | None = None,
        key: str | None = None,
    ) -> OutgoingMessage:
        """An inline message if the payload fits ``limits`` (and the policy), else store it and
        return the pointer message. Reads at most the limit's worth of a stream to decide.
        With the AWS pointer format a stored payload must be UTF-8 (see :meth:`store_payload`).
        ``key`` names the stored object (under the store's prefix) instead of ``key_naming``."""
        flow = self.prepare_flow(
            payload, SYNC, attributes=attributes, limits=limits, content_type=content_type, key=key
        )
        return run_sync(flow)

    async def prepare_flow(
        self, payload: Sendable, io: StoreIO, **options: Unpack[PrepareOptions]
    ) -> OutgoingMessage:
        """:meth:`prepare`, its store I/O done through ``io`` (see :mod:`offload_core.flow`)."""
        with observing(self.plugins, "prepare") as op:
            message = await self._prepare(payload, io, options)
            op.attributes["stored"] = message.pointer is not None
            return message

    async def _prepare(
        self, payload: Sendable, io: StoreIO, options: PrepareOptions
    ) -> OutgoingMessage:
        limits = options.get("limits") or Limits()
        content_type, key = options.get("content_type"), options.get("key")
        attrs = as_attributes(options.get("attributes"))
        self._check_attributes(attrs, limits)
        payload, content_type = _json_encoded(payload, content_type)
        origin = _tell(payload)
        chunks: Iterator[Frozen] = iter_chunks(payload)
        if self.policy.mode != "always":
            budget = self.policy.effective_limit(limits)
            head, chunks = _peek(chunks, budget + 1)
            if len(head) <= budget:
                body = _as_text(head)
                if body is not None and not self._looks_like_pointer(body, attrs):
                    measured = limits.measure(body, attrs if limits.carries_attributes else {})
                    if not self.policy.should_offload(measured, limits):
                        return OutgoingMessage(body, attrs)
                elif self.policy.mode == "never":
                    raise IncompatibleOptionsError(
                        "payload cannot be sent inline (binary, or it looks like a pointer) and "
                        "offloading is off"
                    )
            elif self.policy.mode == "never":
                raise MessageTooLargeError(
                    size=len(head),
                    limit=budget,
                    reason="payload alone is larger; offloading is off",
                )
        if isinstance(payload, (bytes, bytearray, memoryview, str)):
            source: Payload = payload
        elif origin is not None:
            cast(IO[bytes], payload).seek(origin)
            source = payload
        else:
            source = chunks  # a one-shot stream: what was peeked, then the rest
        pointer = await self.store_flow(source, content_type, key, io)
        try:
            return self._pointer_message(pointer, attrs, limits)
        except BaseException:
            await self.discard_flow(pointer, io)
            raise

    def publish(
        self,
        payload: Sendable,
        send: Callable[[OutgoingMessage], T],
        *,
        attributes: Mapping[str, AttributeLike] | None = None,
        limits: Limits | None = None,
        content_type: str | None = None,
        outcome_unknown: OutcomeRule = is_outcome_unknown,
    ) -> T:
        """:meth:`prepare`, then ``send(message)``. A payload stored for a send that raises is
        removed again (best effort) before the error propagates, unless ``outcome_unknown``
        says the message may have been sent all the same (by default: an interruption, or an
        error whose ``outcome_unknown`` is true; see :mod:`offload_core.publishing`). A ``send``
        that calls boto3 itself passes ``offload_core.aws.errors.outcome_unknown``, which also
        knows botocore's read timeouts and retried calls."""
        message = self.prepare(
            payload, attributes=attributes, limits=limits, content_type=content_type
        )
        with compensating([message.pointer], self.discard, outcome_unknown):
            return send(message)

    async def send_flow(
        self,
        message: OutgoingMessage,
        send: Callable[[OutgoingMessage], Awaitable[T]],
        outcome_unknown: OutcomeRule,
        io: StoreIO,
    ) -> T:
        """``await send(message)``; its stored payload removed again if the send certainly
        failed (:func:`~offload_core.publishing.compensating_flow`)."""
        async with compensating_flow(
            [message.pointer], partial(self.discard_flow, io=io), outcome_unknown
        ):
            return await send(message)

    def store_payload(
        self, payload: Sendable, *, content_type: str | None = None, key: str | None = None
    ) -> Pointer:
        """Store the payload (streamed, hashed, maybe compressed) and return its pointer.

        ``key`` names the object (under the store's prefix; an object already there is
        replaced, as the AWS clients' ``S3Key`` attribute does) instead of ``key_naming``.
        With the AWS pointer format, a payload that is not UTF-8 text is refused (AWS clients
        decode the stored body as text), as it streams and before the upload completes."""
        return run_sync(self.store_flow(payload, content_type, key, SYNC))

    async def store_flow(
        self, payload: Sendable, content_type: str | None, key: str | None, io: StoreIO
    ) -> Pointer:
        """:meth:`store_payload`, its store I/O done through ``io``."""
        if key is not None and self.content_addressed:
            raise IncompatibleOptionsError(
                "a chosen key and content-addressed keys exclude each other; the digest names "
                "the object"
            )
        payload, content_type = _json_encoded(payload, content_type)
        if self.pointer_format == "aws":
            payload = require_utf8(payload)
        try:
            with observing(self.plugins, "store", attributes={"store": self.store.url}) as op:
                pointer = await self._store(payload, content_type, key, io)
                op.attributes.update(_pointer_attributes(pointer))
        except OffloadError as exc:
            self.plugins.notify(ErrorEvent("store", exc, self.store.url, **_fields(op)))
            raise
        self.plugins.notify(
            StoredEvent(
                pointer.location,
                pointer.size if pointer.size is not None else pointer.stored_size or 0,
                pointer.stored_size or 0,
                pointer.codec,
                op.seconds if op.seconds is not None else time.perf_counter() - op.started,
                checksum=pointer.checksum,
                destination=op.find("destination"),
                system=op.find("system"),
            )
        )
        return pointer

    async def _store(
        self, payload: Payload, content_type: str | None, key: str | None, io: StoreIO
    ) -> Pointer:
        now = datetime.now(timezone.utc)
        expires = now + self.expires_after if self.expires_after else None
        if self.content_addressed:
            payload, request = await io.cpu(self._content_address, payload, now, content_type)
        else:
            request = KeyRequest(now=now, content_type=content_type)
        if key is None:
            key = self.key_naming(request)
        size = _size_of(payload)  # before the first read moves a file's position
        # Compressed output, not the reads, fills the store's parts: small reads hold less.
        read_size = CHUNK_SIZE if self._codec.name == "none" else _COMPRESSED_READ
        codec, chunks = choose_codec(self._codec, iter_chunks(payload, read_size))
        metadata = {
            "offload-size": None if size is None else str(size),
            "offload-codec": codec.name,
            "offload-checksum": self.checksum,
            "offload-digest": request.digest,
            "offload-expires": expires.isoformat() if expires else None,
            "content-type": content_type,
        }
        result = await self._write(
            key,
            chunks,
            codec=codec,
            exclusive=self.content_addressed,
            metadata={name: value for name, value in metadata.items() if value},
            io=io,
        )
        pointer = Pointer(
            location=self.store.location(key),
            size=result.size,
            stored_size=result.stored_size,
            codec=result.codec,
            checksum=result.checksum,
            digest=result.digest,
            content_type=content_type,
            expires=expires,
            dialect=self.pointer_format,
        )
        try:
            return self.signing.sign(pointer)
        except BaseException:
            await self.discard_flow(pointer, io)
            raise

    async def _write(
        self,
        key: str,
        chunks: Iterable[Frozen],
        *,
        codec: Codec,
        exclusive: bool,
        metadata: Mapping[str, str],
        io: StoreIO,
    ) -> WriteResult:
        pieces, pending = encode(
            chunks,
            codec=codec,
            checksum=self.checksum,
            hasher=self.plugins.get("checksum", self.checksum)(),
            skip_incompressible=False,
        )
        written = False
        try:
            # The store commits (completes the upload) while the digest finishes hashing.
            async with io.open_write(
                self.store, key, metadata=metadata, exclusive=exclusive
            ) as sink:
                async for piece in io.pieces(pieces):
                    await sink.write(piece)
                written = True
        except FileExistsError:
            if not exclusive:
                pending.close()
                raise
            # Same digest, same key: the object is already there. Describe it without storing.
            if not written:
                async for _ in io.pieces(pieces):
                    pass
        except BaseException:
            pending.close()
            raise
        return await io.cpu(pending.result)  # the digest's last batch

    def _content_address(
        self, payload: Payload, now: datetime, content_type: str | None
    ) -> tuple[Payload, KeyRequest]:
        if isinstance(payload, str):
            payload = payload.encode()
        if isinstance(payload, (bytes, bytearray, memoryview)):

            def rewind() -> None:
                pass
        elif (origin := _tell(payload)) is not None:
            stream = cast(IO[bytes], payload)

            def rewind() -> None:
                stream.seek(origin)
        else:
            raise IncompatibleOptionsError(
                "content-addressed keys need the digest before writing: pass bytes or a seekable "
                "file, not a one-shot stream"
            )
        hasher = self.plugins.get("checksum", self.checksum)()
        for chunk in iter_chunks(payload):
            hasher.update(chunk)
        rewind()
        request = KeyRequest(now, content_type, self.checksum, hasher.hexdigest())
        return payload, request

    def encode(self, pointer: Pointer) -> EncodedPointer:
        """The pointer as this offloader's format writes it."""
        return self._format.encode(replace(pointer, dialect=self.pointer_format))

    def _pointer_message(
        self, pointer: Pointer, attrs: dict[str, Attribute], limits: Limits
    ) -> OutgoingMessage:
        encoded = self.encode(pointer)
        if encoded.attributes and not limits.carries_attributes:
            raise IncompatibleOptionsError(
                f"the {self.pointer_format!r} pointer format needs message attributes, which this "
                "transport drops; use pointer_format='native'"
            )
        merged = {**attrs, **encoded.attributes} if limits.carries_attributes else attrs
        if limits.max_attributes is not None and len(merged) > limits.max_attributes:
            raise IncompatibleOptionsError(
                f"the {self.pointer_format!r} pointer adds {len(encoded.attributes)} attribute(s) "
                f"to {len(attrs)}, over the limit of {limits.max_attributes}; send fewer "
                "attributes or use pointer_format='native'"
            )
        measured = limits.measure(encoded.body, merged if limits.carries_attributes else {})
        if measured > limits.max_size:
            raise MessageTooLargeError(
                size=measured,
                limit=limits.max_size,
                reason="even the pointer message is too large; the attributes alone are too big",
            )
        return OutgoingMessage(encoded.body, merged, pointer)

    def _check_attributes(self, attrs: Mapping[str, Attribute], limits: Limits) -> None:
        reserved = RESERVED_ATTRIBUTES.intersection(attrs)
        if reserved:
            raise IncompatibleOptionsError(
                f"attribute name(s) {sorted(reserved)} are reserved for pointer markers"
            )
        if limits.max_attributes is not None and len(attrs) > limits.max_attributes:
            raise IncompatibleOptionsError(
                f"{len(attrs)} message attributes given; the transport allows "
                f"{limits.max_attributes}"
            )

    def _looks_like_pointer(self, body: str, attrs: Mapping[str, Attribute]) -> bool:
        """An inline body a consumer would take for a pointer is offloaded instead."""
        try:
            return detect(body, attrs, self._readers) is not None
        except OffloadError:
            return True

    def discard(self, pointer: Pointer) -> bool:
        """Delete a stored payload, best effort; ``True`` if the store accepted the delete.

        Only for payloads no other subscriber needs (a failed publish, an opt-in single-consumer
        delete); fan-out consumers never call this."""
        return run_sync(self.discard_flow(pointer, SYNC))

    async def discard_flow(self, pointer: Pointer, io: StoreIO) -> bool:
        """:meth:`discard`, its store I/O done through ``io``."""
        try:
            with observing(self.plugins, "delete", attributes={"location": pointer.location}):
                store, key = self._locate(pointer.location)
                await io.delete(store, key)
        except Exception:
            log.warning("could not delete %s", pointer.location, exc_info=True)
            return False
        return True

    # -- consuming ---------------------------------------------------------------------------

    def parse(
        self, body: str | bytes, attributes: Mapping[str, Attribute] | None = None
    ) -> Received:
        """Unwrap an SNS envelope and detect a pointer; no storage I/O."""
        return Received(*inspect(body, attributes or {}, self._readers))

    def open(
        self, body: str | bytes, attributes: Mapping[str, Attribute] | None = None
    ) -> BinaryIO:
        """The payload as a stream; for a pointer, verified as it is read (the last read raises
        if the size or digest is wrong, so act on the data only after reaching EOF)."""
        received = self.parse(body, attributes)
        if received.pointer is None:
            data = received.body.encode() if isinstance(received.body, str) else received.body
            return io.BytesIO(data)
        return self.open_pointer(received.pointer)

    def resolve(
        self, body: str | bytes, attributes: Mapping[str, Attribute] | None = None
    ) -> bytes:
        """The payload as bytes, verified: inline bodies as UTF-8, pointers dereferenced."""
        received = self.parse(body, attributes)
        if received.pointer is None:
            return received.body.encode() if isinstance(received.body, str) else received.body
        return self.read_pointer(received.pointer)

    def read_pointer(self, pointer: Pointer) -> bytes:
        """Dereference and verify a pointer; the whole payload in memory."""
        return self._read_pointer(pointer, {})

    def open_pointer(self, pointer: Pointer) -> BinaryIO:
        """A verifying stream of the payload; refuses pointers whose signature does not pass, and
        locations outside the allowed stores, before any I/O."""
        return self._open_pointer(pointer, {})

    def _read_pointer(self, pointer: Pointer, message: Mapping[str, Any]) -> bytes:
        """:meth:`read_pointer` for a message (``message_id``, ``system``, ``destination``,
        ``links``: what the ``resolve`` step and its events say of it)."""
        return run_sync(self.read_flow(pointer, message, SYNC))

    async def read_flow(self, pointer: Pointer, message: Mapping[str, Any], io: StoreIO) -> bytes:
        """:meth:`_read_pointer`, its store I/O done through ``io``."""
        try:
            with observing(
                self.plugins, "resolve", attributes=_pointer_attributes(pointer), **message
            ) as op:
                async with io.reserving(_stored_size(pointer)):
                    stream = await self._verifying(pointer, op, io)
                    with stream, observing(self.plugins, "read"):
                        data = await io.read_all(stream)
        except OffloadError as exc:
            self._resolve_failed(exc, pointer, op)
            raise
        self._resolved(pointer, len(data), op)
        return data

    def _open_pointer(self, pointer: Pointer, message: Mapping[str, Any]) -> BinaryIO:
        """:meth:`open_pointer` for a message; its ``resolve`` step lasts until the stream is
        verified, fails or is closed."""
        return run_sync(self.open_flow(pointer, message, SYNC))

    async def open_flow(
        self, pointer: Pointer, message: Mapping[str, Any], io: StoreIO
    ) -> BinaryIO:
        """:meth:`_open_pointer`, the store opened through ``io``."""
        op = begin(self.plugins, "resolve", attributes=_pointer_attributes(pointer), **message)
        if op is None:
            op = Operation("resolve", **message)
        try:
            stream = await self._verifying(pointer, op, io)
        except OffloadError as exc:
            self._resolve_failed(exc, pointer, op)
            end(self.plugins, op, exc)
            raise
        if isinstance(stream, VerifyingReader):
            stream.on_end = partial(self._stream_ended, pointer, stream, op)
        return stream

    def _stream_ended(
        self, pointer: Pointer, stream: VerifyingReader, op: Operation, error: BaseException | None
    ) -> None:
        if error is not None:
            self._resolve_failed(error, pointer, op)
        elif stream.verified:
            self._resolved(pointer, stream.bytes_read, op)
        op.attributes["verified"] = stream.verified
        end(self.plugins, op, error)

    def _resolved(self, pointer: Pointer, size: int, op: Operation) -> None:
        seconds = op.seconds if op.seconds is not None else time.perf_counter() - op.started
        self.plugins.notify(
            ResolvedEvent(pointer.location, size, pointer.dialect, seconds, **_fields(op))
        )

    def _resolve_failed(self, exc: BaseException, pointer: Pointer, op: Operation) -> None:
        if isinstance(exc, OffloadError):
            self.plugins.notify(
                ErrorEvent("resolve", exc, pointer.location, **_fields(op), seconds=op.seconds)
            )

    async def _verifying(self, pointer: Pointer, op: Operation, io: StoreIO) -> BinaryIO:
        """The verifying stream, after the ``locate`` step (signature, allowed stores, open)."""
        with observing(self.plugins, "locate", parent=op):
            store, key = self.locate(pointer)
            if pointer.size is not None and pointer.size > self.max_payload_size:
                raise DecompressionLimitError(
                    limit=self.max_payload_size, location=pointer.location
                )
            codec: Codec = self.plugins.get("compressor", pointer.codec)()
            hasher = self.plugins.get("checksum", pointer.checksum)() if pointer.checksum else None
            raw = await io.open_read(store, key, _stored_size(pointer))
        try:
            reader = open_verified(
                raw,
                codec=codec,
                size=pointer.size,
                hasher=hasher,
                expected_digest=pointer.digest,
                checksum=pointer.checksum,
                max_size=self.max_payload_size,
                location=pointer.location,
            )
        except BaseException:
            raw.close()
            raise
        if self.plugins.observed:
            reader.verifying = partial(observing, self.plugins, "verify", parent=op)
        return reader

    def locate(self, pointer: Pointer) -> tuple[Store, str]:
        """The trusted store and key a pointer names, after its signature check; no I/O.

        Raises ``SignatureError`` or ``LocationNotAllowedError`` for pointers not to follow."""
        self.signing.check(pointer)
        return self._locate(pointer.location)

    def _locate(self, location: str) -> tuple[Store, str]:
        for alias, target in self._aliases:
            if location.startswith(alias):
                location = target + location[len(alias) :]
                break
        for store in self._stores:
            key = store.key_for(location)
            if key is not None:
                return store, key
        raise LocationNotAllowedError(location)


def _checked_aliases(aliases: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(prefix, target)`` pairs, longest prefix first; both end with ``/``."""
    out = []
    for alias, target in aliases.items():
        if "://" not in alias or "://" not in target:
            raise ConfigurationError(
                f"alias {alias!r} -> {target!r}: both must be URLs (mqt://s3/ -> s3://bucket/)"
            )
        out.append((alias.rstrip("/") + "/", target.rstrip("/") + "/"))
    return sorted(out, key=lambda pair: -len(pair[0]))


def _fields(op: Operation) -> dict[str, Any]:
    """What an event says of the message an operation was for."""
    return {
        "message_id": op.find("message_id"),
        "destination": op.find("destination"),
        "system": op.find("system"),
    }


def _pointer_attributes(pointer: Pointer) -> dict[str, Any]:
    """What a step says of the stored payload it wrote or reads."""
    return {
        "location": pointer.location,
        "size": pointer.size,
        "stored_size": pointer.stored_size,
        "codec": pointer.codec,
        "checksum": pointer.checksum,
        "pointer_format": pointer.dialect,
        "signed": pointer.signature is not None,
    }


def _configured(kind: str, factory: Callable[..., T], options: Mapping[str, Any] | None) -> T:
    """``factory(**options)``; options it does not take are a ``ConfigurationError``."""
    try:
        return factory(**(options or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"invalid options for the {kind} {getattr(factory, 'name', factory)!r}: {exc}"
        ) from exc


def _json_encoded(payload: Sendable, content_type: str | None) -> tuple[Payload, str | None]:
    """A ``dict`` (any mapping) or ``list`` payload as compact JSON text, typed
    ``application/json`` unless the caller said otherwise, as EventBridge details are; a list
    of bytes-like pieces stays a stream of chunks. Anything else is returned as it is."""
    if is_json_value(payload):
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return text, content_type or JSON_TYPE
    return cast(Payload, payload), content_type


def is_json_value(payload: object) -> bool:
    """Whether ``payload`` is sent as JSON: a mapping, or a list that is not all bytes pieces."""
    return isinstance(payload, Mapping) or (
        isinstance(payload, list)
        and not (payload and all(isinstance(p, (bytes, bytearray, memoryview)) for p in payload))
    )


def _stored_size(pointer: Pointer) -> int | None:
    """The size the stored object should have, as the pointer declares it (a claim the store
    checks): its stored size, or, stored uncompressed, the payload's size."""
    if pointer.stored_size is not None:
        return pointer.stored_size
    return pointer.size if pointer.codec == "none" else None


def _size_of(payload: Payload) -> int | None:
    """The byte length of ``payload`` if it is known before reading it: bytes-like objects,
    ASCII text, and the rest of a seekable file."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return memoryview(payload).nbytes
    if isinstance(payload, str):
        return len(payload) if payload.isascii() else None
    if (origin := _tell(payload)) is not None:
        stream = cast(IO[bytes], payload)
        end = stream.seek(0, io.SEEK_END)
        stream.seek(origin)
        return max(0, end - origin)
    return None


def _tell(payload: Payload) -> int | None:
    """The position of a seekable file payload, to rewind to after peeking; else ``None``."""
    seekable = getattr(payload, "seekable", None)
    if callable(seekable) and seekable():
        return cast(IO[bytes], payload).tell()
    return None


def _peek(chunks: Iterator[Frozen], n: int) -> tuple[bytes, Iterator[Frozen]]:
    """Up to ``n`` bytes from the front of ``chunks`` (a copy of those only), and an iterator
    over all of them."""
    taken: list[Frozen] = []
    pieces: list[memoryview] = []
    left = n
    for chunk in chunks:
        taken.append(chunk)
        pieces.append(memoryview(chunk)[:left])
        left -= len(pieces[-1])
        if left <= 0:
            break
    return b"".join(pieces), itertools.chain(taken, chunks)


def _as_text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None

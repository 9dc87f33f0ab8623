"""What the operator commands do, without the command line: read messages as operators find
them, store and fetch payloads, inspect pointers, and collect old payloads.

Every function returns data (frozen dataclasses with a ``to_json()``, or JSON-ready dicts);
``offload_core.cli`` only parses options and prints. Problems with what the caller asked for
raise :class:`~offload_core.errors.ConfigurationError`; failed operations raise the rest of the
:mod:`offload_core.errors` tree.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Literal

from .detect import inspect as detect_pointer
from .detect import unwrap_sns
from .errors import ConfigurationError, LocationNotAllowedError, OffloadError, PointerError
from .message import Attribute
from .offloader import Offloader, Received
from .pipeline import Frozen, iter_chunks
from .plugins import Plugins, default_plugins
from .pointer import Pointer
from .store import ObjectInfo, Store

__all__ = [
    "GcReport",
    "Inspection",
    "Message",
    "Resolution",
    "Saved",
    "Stored",
    "attributes_json",
    "collect_garbage",
    "consumer",
    "inspect_message",
    "load_messages",
    "parse_duration",
    "parse_messages",
    "pointer_json",
    "put_file",
    "read_input",
    "save_payload",
    "verified_checks",
]

#: Called with the number of bytes just transferred.
Progress = Callable[[int], None]

#: The largest message, event or message file read; a Lambda event is at most 6 MB.
MAX_INPUT_BYTES = 16 * 2**20
_COPY_CHUNK = 2**20


# -- messages as operators find them -----------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message body and its attributes, and where in the input it was found."""

    body: str
    attributes: Mapping[str, Attribute] = field(default_factory=dict)
    source: str = "message body"


def read_input(value: str, stdin: IO[bytes] | None = None) -> str:
    """The text of a message argument: the value itself, ``-`` for stdin, ``@path`` for a file."""
    if value == "-":
        if stdin is None:
            raise ConfigurationError("'-' means standard input, which is not available here")
        data = stdin.read(MAX_INPUT_BYTES + 1)
        what = "standard input"
    elif value.startswith("@"):
        path = Path(value[1:])
        what = str(path)
        try:
            with path.open("rb") as file:
                data = file.read(MAX_INPUT_BYTES + 1)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the message file {path}: {exc.strerror or exc}"
            ) from exc
    else:
        return value
    if len(data) > MAX_INPUT_BYTES:
        raise ConfigurationError(
            f"{what} is larger than {MAX_INPUT_BYTES} bytes: pass a message or event, not a payload"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{what} is not UTF-8 text: pass a message or event") from exc


def parse_messages(text: str) -> list[Message]:
    """The messages in ``text``, recognised by shape.

    - a Lambda event (``Records`` from SQS or SNS): every record's ``body`` or ``Sns`` envelope;
    - an SQS message as boto3 returns it (``Body``, ``MessageAttributes``), or a whole
      ``ReceiveMessage`` response (``Messages``);
    - ``{"body": ..., "attributes" | "messageAttributes": ...}`` (a Lambda SQS record alone);
    - an EventBridge event (``detail-type`` and ``detail``): its ``detail``, also as an SQS body;
    - anything else is a message body as received (SNS envelopes are unwrapped later).
    """
    try:
        value = json.loads(text)
    except ValueError:
        return [Message(text)]
    if not isinstance(value, dict):
        return [Message(text)]
    if isinstance(value.get("Records"), list):
        return [_record(r, f"Lambda event record {i}") for i, r in enumerate(value["Records"])]
    if isinstance(value.get("Messages"), list):
        return [_record(m, f"SQS message {i}") for i, m in enumerate(value["Messages"])]
    if _is_eventbridge(value):
        return [_eventbridge(value, "EventBridge event")]
    if any(isinstance(value.get(k), str) for k in ("Body", "body")) or isinstance(
        value.get("Sns"), dict
    ):
        return [_record(value, "SQS message" if "Body" in value else "message record")]
    return [Message(text)]


def load_messages(value: str, stdin: IO[bytes] | None = None) -> list[Message]:
    """:func:`read_input`, then :func:`parse_messages`."""
    return parse_messages(read_input(value, stdin))


def _record(raw: object, source: str) -> Message:
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{source} is not a JSON object")
    if isinstance(raw.get("Sns"), dict):
        # A Lambda SNS record holds the notification envelope itself: unwrap it as one.
        return Message(json.dumps(raw["Sns"]), {}, f"{source} (SNS)")
    body = raw.get("body", raw.get("Body"))
    if not isinstance(body, str):
        raise ConfigurationError(f"{source} has no 'body' or 'Sns' to read a message from")
    # A Lambda record's "attributes" are SQS system attributes; elsewhere they are the message's.
    names = ("messageAttributes", "MessageAttributes", "attributes")
    attributes = _attributes(next((raw[n] for n in names if n in raw), None), source)
    if body.lstrip().startswith("{") and '"detail-type"' in body:
        with suppress(ValueError):
            event = json.loads(body)
            if _is_eventbridge(event):
                return _eventbridge(event, f"{source} (EventBridge event)")
    return Message(body, attributes, source)


def _is_eventbridge(value: object) -> bool:
    return isinstance(value, dict) and "detail-type" in value and "detail" in value


def _eventbridge(event: Mapping[str, Any], source: str) -> Message:
    detail = event["detail"]
    body = detail if isinstance(detail, str) else json.dumps(detail, separators=(",", ":"))
    return Message(body, {}, source)


def _attributes(raw: object, source: str) -> dict[str, Attribute]:
    """Attributes in boto3's shape (``DataType``/``StringValue``/``BinaryValue``) or a Lambda
    record's (``dataType``/``stringValue``/``binaryValue``, base64)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigurationError(f"the message attributes of {source} are not a JSON object")
    out: dict[str, Attribute] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            continue  # system attributes such as ApproximateReceiveCount are plain strings
        data_type = entry.get("DataType", entry.get("dataType"))
        text = entry.get("StringValue", entry.get("stringValue"))
        binary = entry.get("BinaryValue", entry.get("binaryValue"))
        if isinstance(data_type, str) and isinstance(text, str):
            out[name] = Attribute(data_type, text)
            continue
        if not isinstance(data_type, str) or not isinstance(binary, str):
            raise ConfigurationError(
                f"attribute {name!r} of {source} needs DataType and StringValue or BinaryValue"
            )
        try:
            out[name] = Attribute(data_type, base64.b64decode(binary, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError(
                f"attribute {name!r} of {source}: BinaryValue is not base64"
            ) from exc
    return out


def attributes_json(attributes: Mapping[str, Attribute]) -> dict[str, dict[str, str]]:
    """Attributes in boto3's shape, binary values in base64: what :func:`parse_messages` reads."""
    return {
        name: {"DataType": a.data_type, "BinaryValue": base64.b64encode(a.value).decode()}
        if isinstance(a.value, bytes)
        else {"DataType": a.data_type, "StringValue": a.value}
        for name, a in attributes.items()
    }


def pointer_json(pointer: Pointer) -> dict[str, Any]:
    """Every field of a pointer as JSON values: times in ISO 8601, bytes in base64."""
    plain: dict[str, Any] = _jsonable(asdict(pointer))
    return plain


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def verified_checks(pointer: Pointer) -> tuple[str, ...]:
    """What reading the pointer's payload verifies: foreign dialects may carry neither."""
    checks = []
    if pointer.size is not None:
        checks.append("size")
    if pointer.digest is not None:
        checks.append(f"{pointer.checksum} digest")
    return tuple(checks)


# -- put and get -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A stored payload's pointer, and the message that carries it."""

    pointer: Pointer
    body: str
    attributes: Mapping[str, Attribute]

    def to_json(self) -> dict[str, Any]:
        """An SQS message as boto3 returns one (what :func:`parse_messages` reads), plus the
        pointer's fields."""
        return {
            "Body": self.body,
            "MessageAttributes": attributes_json(self.attributes),
            "pointer": pointer_json(self.pointer),
        }


def put_file(
    offloader: Offloader,
    path: Path,
    *,
    content_type: str | None = None,
    progress: Progress | None = None,
) -> Stored:
    """Store a file, streamed, and return the pointer message that names it."""
    with path.open("rb") as file:
        chunks = _counted(iter_chunks(file), progress)
        pointer = offloader.store_payload(chunks, content_type=content_type)
    encoded = offloader.encode(pointer)
    return Stored(pointer, encoded.body, encoded.attributes)


def _counted(chunks: Iterable[Frozen], progress: Progress | None) -> Iterator[Frozen]:
    for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        yield chunk


def consumer(
    stores: Sequence[str],
    allow: Sequence[str] = (),
    *,
    storage_options: Mapping[str, Any] | None = None,
    plugins: Plugins | None = None,
) -> Offloader:
    """An offloader that reads only from ``stores`` and ``allow``; naming none is an error."""
    trusted = [*stores, *allow]
    if not trusted:
        raise ConfigurationError(
            "no trusted store: pass --store URL (or --allow URL) for where payloads may be read "
            "from; a pointer's location is never trusted on its own"
        )
    return Offloader(
        trusted[0], allow=trusted[1:], storage_options=storage_options, plugins=plugins
    )


@dataclass(frozen=True)
class Saved:
    """A payload written to a file by :func:`save_payload`."""

    path: str
    size: int
    #: False for an inline message, whose body was written.
    offloaded: bool
    location: str | None
    dialect: str
    #: What was verified while reading (``size``, ``sha256 digest``); empty if nothing could be.
    checks: tuple[str, ...]
    digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(asdict(self), checks=list(self.checks))


def save_payload(
    offloader: Offloader, received: Received, dest: Path, *, progress: Progress | None = None
) -> Saved:
    """Stream the payload of ``received`` into ``dest``, verified.

    The bytes go to a temporary file beside ``dest`` that is renamed over it only after the last
    read has passed every check; on any error it is removed and ``dest`` is left as it was.
    """
    if not dest.parent.is_dir():
        raise ConfigurationError(f"cannot write {dest}: {dest.parent} is not a directory")
    pointer = received.pointer
    if pointer is None:
        body = received.body
        stream: IO[bytes] = io.BytesIO(body.encode() if isinstance(body, str) else body)
    else:
        stream = offloader.open_pointer(pointer)  # refuses untrusted locations before any I/O
    with stream:
        fd, tmp = _create_beside(dest)
        try:
            with os.fdopen(fd, "wb") as out:
                size = 0
                while chunk := stream.read(_COPY_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
    return Saved(
        path=str(dest),
        size=size,
        offloaded=pointer is not None,
        location=pointer.location if pointer else None,
        dialect=pointer.dialect if pointer else "inline",
        checks=verified_checks(pointer) if pointer else (),
        digest=getattr(stream, "digest", None),
    )


def _create_beside(dest: Path) -> tuple[int, str]:
    """A new hidden file next to ``dest``, created with the usual permissions (umask applies)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    while True:
        tmp = str(dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part"))
        with suppress(FileExistsError):
            return os.open(tmp, flags, 0o666), tmp


# -- inspect -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    """Whether a pointer's payload could be reached: by reading it all, or by ``info`` only."""

    method: Literal["read", "info"]
    ok: bool
    #: What was found: bytes read and checks passed, or the stored object's size.
    detail: str
    error: str | None = None


@dataclass(frozen=True)
class Inspection:
    """What one message is and where it points."""

    source: str
    #: Whether the body was an SNS notification envelope (raw message delivery off).
    sns_envelope: bool
    #: Pointer dialect, ``"inline"`` for a payload carried in the message, ``None`` if malformed.
    dialect: str | None
    pointer: Pointer | None = None
    #: UTF-8 bytes of the body after unwrapping any envelope.
    body_size: int = 0
    attributes: tuple[str, ...] = ()
    #: Why the message is a pointer but not a valid one.
    error: str | None = None
    expired: bool | None = None
    #: Whether a consumer with the given stores would read the location; ``None``: no stores.
    allowed: bool | None = None
    #: The configured store the location lies under.
    store: str | None = None
    resolution: Resolution | None = None

    @property
    def ok(self) -> bool:
        """Valid, and when stores were given, allowed and resolving."""
        return (
            self.error is None
            and self.allowed is not False
            and (self.resolution is None or self.resolution.ok)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sns_envelope": self.sns_envelope,
            "dialect": self.dialect,
            "pointer": pointer_json(self.pointer) if self.pointer else None,
            "checks": list(verified_checks(self.pointer)) if self.pointer else [],
            "body_size": self.body_size,
            "attributes": list(self.attributes),
            "error": self.error,
            "expired": self.expired,
            "allowed": self.allowed,
            "store": self.store,
            "resolution": asdict(self.resolution) if self.resolution else None,
            "ok": self.ok,
        }


def inspect_message(
    message: Message,
    offloader: Offloader | None = None,
    *,
    read: bool = False,
    plugins: Plugins | None = None,
    now: datetime | None = None,
) -> Inspection:
    """Describe a message; with an ``offloader`` (the trusted stores) also say whether its
    location is allowed and whether it resolves: by reading and verifying the payload
    (``read``) or by asking the store for the object's ``info`` only."""
    plugins = plugins or (offloader.plugins if offloader else default_plugins())
    enveloped = unwrap_sns(message.body, message.attributes)[0] != message.body
    try:
        body, attributes, pointer = detect_pointer(
            message.body, message.attributes, plugins.pointer_readers()
        )
    except OffloadError as exc:
        return Inspection(message.source, enveloped, None, error=_describe(exc))
    base = Inspection(
        message.source,
        enveloped,
        pointer.dialect if pointer else "inline",
        pointer,
        len(body.encode() if isinstance(body, str) else body),
        tuple(attributes),
    )
    if pointer is None:
        return base
    expired = None
    if pointer.expires is not None:
        expired = pointer.expires <= (now or datetime.now(timezone.utc))
    if offloader is None:
        return replace(base, expired=expired)
    try:
        store, key = offloader.locate(pointer)
    except LocationNotAllowedError:
        return replace(base, expired=expired, allowed=False)
    except PointerError as exc:  # a signature that does not pass: not to be followed
        return replace(base, expired=expired, allowed=False, error=_describe(exc))
    resolution = _read(offloader, pointer) if read else _info(store, key, pointer)
    return replace(base, expired=expired, allowed=True, store=store.url, resolution=resolution)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _read(offloader: Offloader, pointer: Pointer) -> Resolution:
    size = 0
    try:
        with offloader.open_pointer(pointer) as stream:
            while chunk := stream.read(_COPY_CHUNK):
                size += len(chunk)
    except OffloadError as exc:
        return Resolution(
            "read", False, "the payload could not be read or did not verify", _describe(exc)
        )
    checks = " and ".join(verified_checks(pointer)) or "nothing (the pointer has no size or digest)"
    return Resolution("read", True, f"read {size} bytes; verified {checks}")


def _info(store: Store, key: str, pointer: Pointer) -> Resolution:
    try:
        info = store.info(key)
    except OffloadError as exc:
        return Resolution("info", False, "no object", _describe(exc))
    expected = pointer.stored_size
    if expected is None and pointer.codec == "none":
        expected = pointer.size
    detail = f"object exists, {info.size} bytes stored; payload not read"
    if expected is not None and info.size != expected:
        error = f"the pointer says {expected} bytes are stored, the store has {info.size}"
        return Resolution("info", False, detail, error)
    return Resolution("info", True, detail)


# -- gc ----------------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:[0-9]+[smhdw])+")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w``, ``1d12h``: a positive duration; ``ValueError`` if not."""
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration: use a number and a unit, like 30m, 12h, 7d")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"([0-9]+)([smhdw])", value))
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class GcReport:
    """What :func:`collect_garbage` found, and what it deleted."""

    store: str
    older_than: timedelta
    cutoff: datetime
    dry_run: bool
    #: Objects older than the cutoff (deleted unless ``dry_run`` or listed in ``failed``).
    matched: tuple[ObjectInfo, ...]
    #: Objects younger than the cutoff, or found younger when checked again before deleting.
    kept: int
    #: Objects the store gives no modification time for; never deleted.
    unknown_age: int
    deleted: tuple[ObjectInfo, ...] = ()
    #: ``(key, error)`` of deletes that failed.
    failed: tuple[tuple[str, str], ...] = ()

    @property
    def matched_bytes(self) -> int:
        return sum(o.size for o in self.matched)

    @property
    def deleted_bytes(self) -> int:
        return sum(o.size for o in self.deleted)

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "older_than_seconds": int(self.older_than.total_seconds()),
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "matched": [_object_json(o) for o in self.matched],
            "matched_count": len(self.matched),
            "matched_bytes": self.matched_bytes,
            "deleted_count": len(self.deleted),
            "deleted_bytes": self.deleted_bytes,
            "kept": self.kept,
            "unknown_age": self.unknown_age,
            "failed": [{"key": k, "error": e} for k, e in self.failed],
        }


def _object_json(info: ObjectInfo) -> dict[str, Any]:
    modified = info.modified.isoformat() if info.modified else None
    return {"key": info.key, "size": info.size, "modified": modified}


def collect_garbage(
    store: Store,
    older_than: timedelta,
    *,
    delete: bool = False,
    prefix: str = "",
    now: datetime | None = None,
) -> GcReport:
    """List (and with ``delete``, delete) objects last modified more than ``older_than`` ago.

    For stores without a lifecycle rule. Younger objects and objects of unknown age are never
    touched; each object is checked again just before it is deleted, so one rewritten since the
    listing is kept.
    """
    if older_than <= timedelta(0):
        raise ConfigurationError("the age limit must be positive")
    cutoff = (now or datetime.now(timezone.utc)) - older_than
    matched: list[ObjectInfo] = []
    kept = unknown = 0
    for info in store.list(prefix):
        if info.modified is None:
            unknown += 1
        elif info.modified < cutoff:
            matched.append(info)
        else:
            kept += 1
    deleted: list[ObjectInfo] = []
    failed: list[tuple[str, str]] = []
    if delete:
        for info in matched:
            try:
                current = store.info(info.key)
                if current.modified is None or current.modified >= cutoff:
                    kept += 1
                    continue
                store.delete(info.key)
            except OffloadError as exc:
                failed.append((info.key, _describe(exc)))
            else:
                deleted.append(current)
    return GcReport(
        store.url,
        older_than,
        cutoff,
        not delete,
        tuple(matched),
        kept,
        unknown,
        tuple(deleted),
        tuple(failed),
    )

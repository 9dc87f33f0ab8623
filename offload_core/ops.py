"""What the operator commands do, without the command line: check the store URLs operators
type, read messages as operators find them, store and fetch payloads, inspect pointers, and
collect old payloads.

Every function returns data (frozen dataclasses with a ``to_json()``, or JSON-ready dicts);
``offload_core.cli`` only parses options and prints. Problems with what the caller asked for
raise :class:`~offload_core.errors.ConfigurationError`; failed operations raise the rest of the
:mod:`offload_core.errors` tree.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Literal

from .detect import inspect as detect_pointer
from .detect import unwrap_sns
from .errors import (
    ConfigurationError,
    IncompatibleOptionsError,
    LocationNotAllowedError,
    OffloadError,
    PointerError,
)
from .message import Attribute, attributes_from_json, attributes_to_json
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
    "S3Options",
    "Saved",
    "Stored",
    "check_store_url",
    "choose_message",
    "collect_garbage",
    "consumer",
    "inspect_message",
    "load_messages",
    "open_store",
    "parse_duration",
    "parse_messages",
    "pointer_json",
    "publisher",
    "put_file",
    "read_input",
    "receive",
    "save_payload",
    "verified_checks",
    "write_payload",
]

#: Called with the number of bytes just transferred.
Progress = Callable[[int], None]

#: The largest message, event or message file read; a Lambda event is at most 6 MB.
MAX_INPUT_BYTES = 16 * 2**20
_COPY_CHUNK = 2**20


# -- store URLs as operators type them ---------------------------------------------------------

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
#: ``s3:/bucket`` or ``s3:bucket``: a scheme of two letters or more without its ``//``.
_SCHEME_WITHOUT_SLASHES = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(?!//)/?")
#: fsspec protocols that reach S3 around the s3 store (its checksums, pointer format, options).
_S3_ALIASES = frozenset({"s3a", "s3n"})


def check_store_url(url: str, plugins: Plugins | None = None, *, persistent: bool = False) -> None:
    """Raise :class:`ConfigurationError`, naming what to use instead, for a store URL that no
    registered backend serves as meant: an unknown or misspelt scheme, a scheme in capitals or
    without its ``//``, an ``http(s)://`` address (an S3 one is given in its ``s3://`` form), and
    with ``persistent`` a store that lives only in this process (``memory://``). Paths and
    chained fsspec URLs (``simplecache::gs://...``) pass unchecked.
    """
    plugins = plugins or default_plugins()
    by_scheme = plugins.registry.by_scheme()
    if "::" in url:
        return
    match = _SCHEME.match(url)
    if match is None:
        bare = _SCHEME_WITHOUT_SLASHES.match(url)
        if bare is not None and _served(bare[1].lower(), by_scheme):
            rest = url[bare.end() :]
            fixed = f"{bare[1].lower()}://{'/' if bare[1].lower() == 'file' else ''}{rest}"
            raise ConfigurationError(
                f"{url!r} is not a store URL: a scheme is followed by '://'; use {fixed!r}"
            )
        return  # a local path
    scheme, rest = match[1], url[match.end() :]
    if scheme != scheme.lower():
        lowered = f"{scheme.lower()}://{rest}"
        check_store_url(lowered, plugins, persistent=persistent)
        raise ConfigurationError(f"URL schemes are lower case: use {lowered!r}, not {url!r}")
    if scheme in ("http", "https"):
        raise ConfigurationError(plugins.store_url_hint(url) or _http_store_problem(url, by_scheme))
    if scheme in _S3_ALIASES and "s3" in by_scheme:
        raise ConfigurationError(
            f"{url!r}: S3 stores are named s3://bucket/prefix; use 's3://{rest}'"
        )
    entry = by_scheme.get(scheme)
    if entry is None and not _served(scheme, by_scheme):
        raise ConfigurationError(_unknown_scheme(url, scheme, rest, by_scheme))
    if persistent and entry is not None and entry.name == "memory":
        raise ConfigurationError(
            f"{url!r} is a memory store, which lives inside one process: what is stored there "
            "is gone when the command exits, and no other command can read it; use a "
            "directory (file:///path) or a bucket (s3://bucket/prefix)"
        )


def _fsspec_protocols() -> set[str]:
    from fsspec.registry import available_protocols

    return set(available_protocols())


def _served(scheme: str, by_scheme: Mapping[str, Any]) -> bool:
    """Whether a backend takes ``scheme``: a registered one, or the fsspec fallback's."""
    if scheme in by_scheme:
        return True
    fallback = by_scheme.get("*")
    if fallback is None:
        return False
    return fallback.name != "fsspec" or scheme in _fsspec_protocols()


def _unknown_scheme(url: str, scheme: str, rest: str, by_scheme: Mapping[str, Any]) -> str:
    import difflib

    registered = sorted(name for name in by_scheme if name != "*")
    close = difflib.get_close_matches(scheme, registered, n=1, cutoff=0.5)
    if not close and "*" in by_scheme:
        close = difflib.get_close_matches(scheme, sorted(_fsspec_protocols()), n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}://{rest}'?" if close else ""
    known = ", ".join(f"{name}://" for name in registered)
    others = " and the installed fsspec filesystems (gs://, az://, ...)" if "*" in by_scheme else ""
    return (
        f"no store serves {scheme}:// URLs ({url!r}).{hint} Stores: a directory path, "
        f"{known}{others}"
    )


def _http_store_problem(url: str, by_scheme: Mapping[str, Any]) -> str:
    """What to say about an HTTP(S) address no plugin recognised."""
    known = ", ".join(f"{name}://" for name in sorted(by_scheme) if name != "*")
    return (
        f"{url!r} is an HTTP(S) address, not a store (offload writes, reads and lists payloads "
        f"through a store); name the store by its URL: a directory path, {known}"
    )


@dataclass(frozen=True)
class S3Options:
    """What the command line's AWS flags set on ``s3://`` stores: s3fs storage options (the
    endpoint, the credentials profile, the client's region) and the S3 store's encryption."""

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    #: ``AES256``, ``aws:kms`` or ``aws:kms:dsse``; a KMS key alone implies ``aws:kms``.
    sse: str | None = None
    kms_key_id: str | None = None

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments for the s3 backend (its own options and s3fs storage options)."""
        out: dict[str, Any] = {}
        if self.endpoint_url:
            out["endpoint_url"] = self.endpoint_url
        if self.profile:
            out["profile"] = self.profile
        if self.region:
            out["client_kwargs"] = {"region_name": self.region}
        if self.sse:
            out["sse"] = self.sse
        if self.kms_key_id:
            out["kms_key_id"] = self.kms_key_id
        return out


def open_store(
    url: str,
    *,
    s3: S3Options | None = None,
    plugins: Plugins | None = None,
    persistent: bool = False,
) -> Store:
    """The store for ``url`` after :func:`check_store_url`; ``s3`` applies to ``s3://`` URLs."""
    plugins = plugins or default_plugins()
    check_store_url(url, plugins, persistent=persistent)
    options = s3.store_options() if s3 is not None and url.startswith("s3://") else {}
    return plugins.open_store(url, **options)


# -- messages as operators find them -----------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message body and its attributes, and where in the input it was found."""

    body: str
    attributes: Mapping[str, Attribute] = field(default_factory=dict)
    source: str = "message body"
    #: Found inside a message or event (an SQS message, a Lambda record, an EventBridge event),
    #: not given as a bare body.
    wrapped: bool = False


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


def parse_messages(text: str, plugins: Plugins | None = None) -> list[Message]:
    """The messages in ``text``, recognised by shape.

    A JSON object is offered to the plugins (``offload_read_messages``): the transports plugin
    reads AWS's shapes, a Lambda event, a ``ReceiveMessage`` response, an SQS message or record,
    an EventBridge event. Failing that, ``{"Body": ..., "MessageAttributes": ...}`` is a message
    as ``offload put`` prints it; anything else is a message body as received (SNS envelopes
    are unwrapped later).
    """
    try:
        value = json.loads(text)
    except ValueError:
        return [Message(text)]
    if not isinstance(value, dict):
        return [Message(text)]
    found = (plugins or default_plugins()).read_messages(value)
    if found is not None:
        return found
    body = value.get("Body")
    if isinstance(body, str):
        attributes = attributes_from_json(value.get("MessageAttributes"), "the message")
        return [Message(body, attributes, "message", wrapped=True)]
    return [Message(text)]


def load_messages(
    value: str, stdin: IO[bytes] | None = None, plugins: Plugins | None = None
) -> list[Message]:
    """:func:`read_input`, then :func:`parse_messages`."""
    return parse_messages(read_input(value, stdin), plugins)


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
            "MessageAttributes": attributes_to_json(self.attributes),
            "pointer": pointer_json(self.pointer),
        }


def put_file(
    offloader: Offloader,
    path: Path,
    *,
    content_type: str | None = None,
    progress: Progress | None = None,
) -> Stored:
    """Store a file, streamed, and return the pointer message that names it. With the AWS
    pointer format the file must be UTF-8 text, as AWS extended clients read it: anything else
    is refused before the upload completes."""
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


def publisher(
    store: str,
    *,
    compression: str | None = None,
    checksum: str = "sha256",
    pointer_format: str | None = None,
    expires_after: timedelta | None = None,
    s3: S3Options | None = None,
    plugins: Plugins | None = None,
    persistent: bool = False,
) -> Offloader:
    """An offloader that stores into ``store``. An expiry is refused, before anything is
    stored, with a pointer format that cannot carry one (the AWS format)."""
    plugins = plugins or default_plugins()
    offloader = Offloader(
        open_store(store, s3=s3, plugins=plugins, persistent=persistent),
        compression=compression,
        checksum=checksum,
        pointer_format=pointer_format,
        expires_after=expires_after,
        plugins=plugins,
    )
    if expires_after is not None:
        fmt = plugins.get("pointer_format", offloader.pointer_format)()
        probe = Pointer(
            offloader.store.location("probe"),
            size=0,
            codec=offloader.compression,
            dialect=offloader.pointer_format,
            expires=datetime(2000, 1, 1, tzinfo=timezone.utc),
        )
        encoded = fmt.encode(probe)
        decoded = fmt.decode(encoded.body, encoded.attributes)
        if decoded is None or decoded.expires is None:
            raise IncompatibleOptionsError(
                f"the {offloader.pointer_format} pointer format cannot carry an expiry "
                "(AWS extended clients know none): use --format native with --expires-after"
            )
    return offloader


def consumer(
    stores: Sequence[str],
    allow: Sequence[str] = (),
    *,
    s3: S3Options | None = None,
    plugins: Plugins | None = None,
    persistent: bool = False,
) -> Offloader:
    """An offloader that reads only from ``stores`` and ``allow``; naming none is an error."""
    trusted = [*stores, *allow]
    if not trusted:
        raise ConfigurationError(
            "no trusted store: pass --store URL (or --allow URL) for where payloads may be read "
            "from; a pointer's location is never trusted on its own"
        )
    plugins = plugins or default_plugins()
    opened = [open_store(url, s3=s3, plugins=plugins, persistent=persistent) for url in trusted]
    return Offloader(opened[0], allow=opened[1:], plugins=plugins)


def choose_message(messages: Sequence[Message], record: int | None = None) -> Message:
    """The one message to read: the only one, or number ``record`` of several."""
    if record is None and len(messages) > 1:
        last = len(messages) - 1
        raise ConfigurationError(
            f"the input holds {len(messages)} messages; choose one with --record 0..{last}"
        )
    index = record or 0
    if index >= len(messages):
        raise ConfigurationError(f"--record {index}: the input holds {len(messages)} message(s)")
    return messages[index]


def receive(
    offloader: Offloader, message: Message, *, inline: bool = False, given: str | None = None
) -> Received:
    """The message as received, to read its payload from.

    A pointer, or a message found inside a message or event (an SQS message, a Lambda record,
    an EventBridge event, an SNS notification), is read as it is. A bare body that is no
    pointer is refused unless ``inline`` says to take it as the payload: a mistyped argument
    must not become a payload. ``given`` is the argument the message came from, for the error.
    """
    received = offloader.parse(message.body, message.attributes)
    if received.pointer is not None or inline or message.wrapped:
        return received
    if unwrap_sns(message.body, message.attributes)[0] != message.body:
        return received
    raise ConfigurationError(_not_a_message(given))


def _not_a_message(given: str | None) -> str:
    if given is not None and given[:1] not in ("-", "@") and os.path.isfile(given):
        return (
            f"{given!r} is not a message or a pointer but the name of a file: pass @{given} to "
            "read the message in it"
        )
    if given is None:
        what = "the message"
    elif given == "-":
        what = "what standard input holds"
    elif given.startswith("@"):
        what = f"what the file {given[1:]} holds"
    else:
        what = f"the argument {given if len(given) <= 40 else given[:37] + '...'!r}"
    return (
        f"{what} is not a pointer or a message (SQS message, Lambda event, EventBridge event or "
        "SNS notification): pass what 'offload put' printed, its body, '-' for stdin or @FILE; "
        "or --inline to write a bare body as the payload"
    )


@dataclass(frozen=True)
class Saved:
    """A payload written by :func:`save_payload` or :func:`write_payload`."""

    #: The file written, ``-`` for a stream (standard output).
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
    with _payload_stream(offloader, received) as stream:
        fd, tmp = _create_beside(dest)
        try:
            with os.fdopen(fd, "wb") as out:
                size = _copy(stream, out, progress)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
    return _saved(str(dest), size, received, stream)


def write_payload(
    offloader: Offloader,
    received: Received,
    out: IO[bytes],
    *,
    progress: Progress | None = None,
) -> Saved:
    """Write the payload of ``received`` to ``out`` (standard output) once it is verified.

    The bytes are spooled to an unnamed temporary file (in ``TMPDIR``) and copied to ``out``
    only after the last read has passed every check, so nothing unverified reaches a pipe.
    """
    with _payload_stream(offloader, received) as stream, tempfile.TemporaryFile() as spool:
        size = _copy(stream, spool, progress)
        spool.seek(0)
        _copy(spool, out, None)
        out.flush()
    return _saved("-", size, received, stream)


def _payload_stream(offloader: Offloader, received: Received) -> IO[bytes]:
    pointer = received.pointer
    if pointer is None:
        body = received.body
        return io.BytesIO(body.encode() if isinstance(body, str) else body)
    return offloader.open_pointer(pointer)  # refuses untrusted locations before any I/O


def _copy(source: IO[bytes], out: IO[bytes], progress: Progress | None) -> int:
    size = 0
    while chunk := source.read(_COPY_CHUNK):
        out.write(chunk)
        size += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return size


def _saved(path: str, size: int, received: Received, stream: IO[bytes]) -> Saved:
    pointer = received.pointer
    return Saved(
        path=path,
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

"""Refuse payloads that are not UTF-8 text when the pointer format needs text.

The AWS extended clients store the message body as is and decode it as UTF-8 on the way back, so
an AWS-format payload must be text. Checking happens as the payload streams (an incremental
decoder, one chunk at a time); bytes are checked before anything is stored.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any, cast

from .errors import IncompatibleOptionsError
from .pipeline import CHUNK_SIZE, Frozen, Payload, iter_chunks

__all__ = ["require_utf8"]

#: Lone surrogates: a ``str`` may hold them, UTF-8 cannot encode them.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _not_text() -> IncompatibleOptionsError:
    return IncompatibleOptionsError(
        "the payload is not valid UTF-8 text, which the 'aws' pointer format needs (AWS extended "
        "clients decode the stored body as text); send text, or use pointer_format='native' for "
        "binary payloads"
    )


class _Decoder:
    """Feeds an incremental UTF-8 decoder and raises the typed error on the first bad byte."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, data: bytes | memoryview, *, final: bool = False) -> None:
        if isinstance(data, bytes) and data.isascii() and not self._decoder.getstate()[0]:
            return  # ASCII after a complete character: valid, and far cheaper to tell
        try:
            self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise _not_text() from exc

    def reset(self) -> None:
        self._decoder.reset()


class _CheckedFile:
    """A binary file whose reads are checked; seeking is passed through (and restarts the check
    at the new position, which is where a payload starts when it is rewound)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decoder = _Decoder()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._decoder.feed(data, final=not data)
        return data

    def seekable(self) -> bool:
        return self._raw.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        self._decoder.reset()
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


def _checked_chunks(chunks: Iterable[Frozen]) -> Iterator[Frozen]:
    decoder = _Decoder()
    for chunk in chunks:
        decoder.feed(chunk)
        yield chunk
    decoder.feed(b"", final=True)


def require_utf8(payload: Payload) -> Payload:
    """``payload`` itself, or a wrapper that raises ``IncompatibleOptionsError`` as soon as the
    bytes read are not UTF-8. Text is checked for what cannot be encoded (lone surrogates)."""
    if isinstance(payload, str):
        if not payload.isascii() and _SURROGATE.search(payload):
            raise _not_text()
        return payload
    if isinstance(payload, (bytes, bytearray, memoryview)):
        if isinstance(payload, (bytes, bytearray)) and payload.isascii():
            return payload
        view = memoryview(payload).cast("B")
        decoder = _Decoder()
        for start in range(0, len(view), CHUNK_SIZE):
            decoder.feed(view[start : start + CHUNK_SIZE])
        decoder.feed(b"", final=True)
        return payload
    if hasattr(payload, "read"):
        return cast(IO[bytes], _CheckedFile(cast(IO[bytes], payload)))
    return _checked_chunks(iter_chunks(cast(Any, payload)))

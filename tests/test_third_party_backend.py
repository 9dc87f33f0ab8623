"""What a third-party storage plugin does to prove itself: subclass the conformance suite.

``DictStore`` stands for another distribution's backend (scheme ``dict``); it shares no code with
the built-in stores, so passing the suite shows the suite checks the contract, not our code.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

import pytest

from offload_core import Plugins, hookimpl
from offload_core.errors import PayloadNotFoundError, UnsafeKeyError
from offload_core.registry import Registrar
from offload_core.store import ObjectInfo, Store
from offload_core.testing import BackendConformance

pytest_plugins = ["pytester"]

# Control characters, backslashes, lone surrogates, "::", absolute, empty, "." / ".." segments,
# drive letters.
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\\\ud800-\udfff]|::|^/|//|/$|(^|/)\.\.?(/|$)|(^|/)[A-Za-z]:"
)


class _Buffer(io.BytesIO):
    """Keeps its bytes when the writer closes it; the store reads them afterwards."""

    def close(self) -> None:
        pass


class DictStore:
    """Objects in a dict under ``dict://name``: the whole of a small third-party backend."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.objects: dict[str, tuple[bytes, Mapping[str, str], datetime]] = {}

    def check(self, key: str) -> str:
        if not key or _UNSAFE.search(key) or len(key.encode("utf-8", "surrogatepass")) > 1024:
            raise UnsafeKeyError(f"unsafe key {key[:80]!r}")
        return key

    def location(self, key: str) -> str:
        return f"{self.url}/{self.check(key)}"

    def key_for(self, location: str) -> str | None:
        prefix = self.url + "/"
        if "::" in location or not location.startswith(prefix):
            return None
        try:
            return self.check(location[len(prefix) :])
        except UnsafeKeyError:
            return None

    def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> AbstractContextManager[BinaryIO]:
        return self._write(self.check(key), MappingProxyType(dict(metadata or {})), exclusive)

    @contextmanager
    def _write(self, key: str, metadata: Mapping[str, str], exclusive: bool) -> Iterator[BinaryIO]:
        buffer = _Buffer()
        yield buffer
        if exclusive and key in self.objects:
            raise FileExistsError(key)
        self.objects[key] = (buffer.getvalue(), metadata, datetime.now(timezone.utc))

    def _get(self, key: str) -> tuple[bytes, Mapping[str, str], datetime]:
        try:
            return self.objects[self.check(key)]
        except KeyError:
            raise PayloadNotFoundError(f"no {key!r}", location=self.location(key)) from None

    def open_read(self, key: str) -> BinaryIO:
        return io.BytesIO(self._get(key)[0])

    def info(self, key: str) -> ObjectInfo:
        data, metadata, modified = self._get(key)
        return ObjectInfo(key, len(data), modified, metadata)

    def delete(self, key: str) -> None:
        self.objects.pop(self.check(key), None)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield self.info(key)


# The adoption itself: these few lines run the whole suite against DictStore.
class TestDictStore(BackendConformance):
    supports_metadata = True

    @pytest.fixture
    def store(self) -> DictStore:
        return DictStore("dict://tests")


class AcmePlugin:
    """The plugin object another distribution would expose through its entry point."""

    @hookimpl
    def offload_register_backends(self, register: Registrar) -> None:
        register("dict", DictStore, schemes=("dict",), description="a dict, by acme")


def test_a_registered_third_party_store_opens_by_url() -> None:
    plugins = Plugins.from_modules(AcmePlugin())
    factory = plugins.entry_for_url("dict://from-plugin").load()
    store = factory("dict://from-plugin")
    assert isinstance(store, Store)
    assert store.location("k") == "dict://from-plugin/k"


def test_the_suite_fails_a_store_that_lets_keys_escape(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(str(Path(__file__).parent))
    pytester.makepyfile(
        textwrap.dedent(
            """
            import pytest
            from offload_core.testing import BackendConformance
            from test_third_party_backend import DictStore


            class LaxStore(DictStore):
                def check(self, key):
                    return key  # forgot to validate


            class TestLaxStore(BackendConformance):
                @pytest.fixture
                def store(self):
                    return LaxStore("dict://lax")
            """
        )
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-k", "unsafe or key_for")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) > 100
    result.stdout.fnmatch_lines(["*test_unsafe_keys_are_refused*dotdot*"])

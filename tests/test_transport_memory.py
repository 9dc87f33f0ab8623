"""The in-memory transport passes the transport conformance suite, and the suite fails a
transport that breaks the contract."""

from __future__ import annotations

import textwrap

import pytest

from offload_core import Offloader
from offload_core.testing.transports import MemoryTransport, TransportConformance

pytest_plugins = ["pytester"]


class TestMemoryTransport(TransportConformance):
    @pytest.fixture
    def transport(self, offloader: Offloader) -> MemoryTransport:
        return MemoryTransport("memory-queue", offloader, max_message_size=4096)


@pytest.mark.parametrize(
    ("broken", "failing"),
    [
        ("def _outcome_unknown(self, exc):\n    return False", "unknown_keeps_its_payload"),
        ("def _outcome_unknown(self, exc):\n    return True", "refused_send_removes"),
        ("def _check(self, entry):\n    pass", None),
    ],
    ids=["drops-unknown", "keeps-refused", "harmless"],
)
def test_the_suite_fails_a_transport_that_breaks_the_contract(
    pytester: pytest.Pytester, broken: str, failing: str | None
) -> None:
    pytester.makepyfile(
        textwrap.dedent(
            """
            import pytest
            from offload_core.testing.transports import MemoryTransport, TransportConformance


            class Broken(MemoryTransport):
            {body}


            class TestBroken(TransportConformance):
                @pytest.fixture
                def transport(self, offloader):
                    return Broken("broken", offloader, max_message_size=4096)
            """
        ).format(body=textwrap.indent(broken, "    "))
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    if failing is None:
        assert outcomes.get("failed", 0) == 0
    else:
        assert outcomes.get("failed", 0) >= 1
        assert outcomes.get("passed", 0) > 10  # the rest of the contract still holds
        result.stdout.fnmatch_lines([f"*FAILED*{failing}*"])


class PlainHooks(MemoryTransport):
    """A plugin written before the hooks could be coroutines: plain overrides of
    ``_prepare`` and ``_answer_batch``."""

    def _prepare(self, entry, payload, limits):  # type: ignore[no-untyped-def]
        return self.offloader.prepare(payload, attributes=entry.attributes, limits=limits)

    def _answer_batch(self, batch):  # type: ignore[no-untyped-def]
        return self._send_messages(batch), None


class TestPlainHooks(TransportConformance):
    """Such a plugin keeps passing the suite, on the synchronous face."""

    @pytest.fixture
    def transport(self, offloader: Offloader) -> MemoryTransport:
        return PlainHooks("plain-hooks", offloader, max_message_size=4096)

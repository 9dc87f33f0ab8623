"""A transport plugin shipped as its own distribution proves itself with the conformance suite.

``dirq-offload`` (``tests/data/dirq/dirq_offload.py``, the code the README shows in full) is
installed here the way pip lays out a distribution: found through the ``offload`` entry-point
group, selected by name, and run against :class:`TransportConformance`.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from dist_support import install_distribution

from offload_core import Attribute, Offloader, Plugins, Transport
from offload_core.testing import TransportConformance

SOURCE = Path(__file__).parent / "data" / "dirq" / "dirq_offload.py"
README = Path(__file__).parent.parent / "README.md"


@pytest.fixture
def dirq_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    """The installed plugins, with ``dirq-offload`` 0.3.0 installed beside them."""
    modules = {"dirq_offload.py": SOURCE.read_text()}
    site = install_distribution(
        tmp_path / "site", "dirq-offload", "0.3.0", modules, "dirq = dirq_offload"
    )
    monkeypatch.syspath_prepend(str(site))
    yield Plugins.from_entry_points(env={})
    sys.modules.pop("dirq_offload", None)


class TestDirQueue(TransportConformance):
    @pytest.fixture
    def transport(self, dirq_plugins: Plugins, offloader: Offloader, tmp_path: Path) -> Any:
        return dirq_plugins.open_transport("dirq", str(tmp_path / "queue"), offloader)

    @pytest.fixture
    def send_raw(self, tmp_path: Path) -> Callable[[str, Mapping[str, Attribute]], None]:
        def send(body: str, attributes: Mapping[str, Attribute]) -> None:
            document = {"body": body, "attributes": {}}
            (tmp_path / "queue" / f"{uuid.uuid4().hex}.msg").write_text(json.dumps(document))

        return send


def test_the_plugin_is_listed_with_its_distribution(dirq_plugins: Plugins) -> None:
    info = {i.name: i for i in dirq_plugins.info()}
    assert (info["dirq"].distribution, info["dirq"].version) == ("dirq-offload", "0.3.0")
    assert "offload_register_transports" in info["dirq"].hooks


def test_the_plugin_is_a_transport(dirq_plugins: Plugins, tmp_path: Path) -> None:
    queue = dirq_plugins.open_transport("dirq", str(tmp_path / "q"), Offloader("memory://dirq"))
    assert isinstance(queue, Transport)


def test_the_readme_shows_the_plugin_as_tested() -> None:
    assert SOURCE.read_text() in README.read_text()

"""Shared fixtures: a third-party plugin installed as its own distribution; fresh plugins."""

from __future__ import annotations

import os
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dist_support import install_distribution

from offload_core import Plugins, set_default_plugins
from offload_core.testing.aio import LoopThread
from offload_core.testing.aws import MotoServer

THIRD_PARTY_MODULE = textwrap.dedent(
    '''
    """A third-party offload plugin, as another distribution would ship it."""
    import hashlib

    import click

    from offload_core import hookimpl

    EVENTS = []


    class AcmeSum:
        """sha1 under another name: a checksum plugin."""

        name = "acme-sum"

        def __init__(self):
            self._h = hashlib.sha1()

        def update(self, data):
            self._h.update(data)

        def hexdigest(self):
            return self._h.hexdigest()


    @hookimpl
    def offload_register_checksums(register):
        register("acme-sum", AcmeSum, description="sha1, by acme")


    @hookimpl
    def offload_register_backends(register):
        register("acme", "acme_offload_store:AcmeStore", schemes=("acme",),
                 extra="acme")


    @hookimpl
    def offload_register_commands(cli):
        @cli.command(name="acme-hello")
        def acme_hello():
            """Say hello from acme."""
            click.echo("hello from acme")


    @hookimpl
    def offload_stored(event):
        EVENTS.append(event)
    '''
)


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Installs ``acme-offload`` 1.2.3 as a distribution on sys.path (dist-info + entry points),
    the way pip would lay it out; yields the folder, to put on PYTHONPATH for subprocesses."""
    modules = {
        "acme_offload_plugin.py": THIRD_PARTY_MODULE,
        # The store module needs an SDK that is not installed: selecting it must name the extra.
        "acme_offload_store.py": "import acme_sdk_not_installed\n",
    }
    site = install_distribution(
        tmp_path / "site", "acme-offload", "1.2.3", modules, "acme = acme_offload_plugin"
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in ("acme_offload_plugin", "acme_offload_store"):
        sys.modules.pop(name, None)


@pytest.fixture
def subprocess_env(third_party: Path) -> dict[str, str]:
    """Environment for running the ``offload`` script with the third-party plugin installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFLOAD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(third_party), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(autouse=True)
def _fresh_default_plugins() -> Iterator[None]:
    """Every test starts without a cached process-wide plugin manager."""
    set_default_plugins(None)
    yield
    set_default_plugins(None)


@pytest.fixture
def plugins() -> Plugins:
    """The installed plugins, loaded fresh (allow/blocklist variables ignored)."""
    return Plugins.from_entry_points(env={})


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    """An event loop on a thread of its own, for driving asynchronous faces from sync suites."""
    with LoopThread() as loop:
        yield loop


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session, on 127.0.0.1 and a free port; stopped at the end.

    Tests keep their resources apart with unique bucket and queue names."""
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def bucket(moto_server: MotoServer) -> str:
    """A fresh S3 bucket for each test module on the session's moto server."""
    name = f"offload-test-{uuid.uuid4().hex[:12]}"
    moto_server.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def sqs(moto_server: MotoServer) -> Any:
    """A fresh SQS client per test, so that counting its calls counts only this test's."""
    return moto_server.client("sqs")


@pytest.fixture
def sns(moto_server: MotoServer) -> Any:
    """A fresh SNS client per test."""
    return moto_server.client("sns")


@pytest.fixture
def topic_arn(sns: Any) -> Iterator[str]:
    """A fresh SNS topic, deleted afterwards."""
    arn: str = sns.create_topic(Name=f"topic-{uuid.uuid4().hex[:12]}")["TopicArn"]
    yield arn
    sns.delete_topic(TopicArn=arn)

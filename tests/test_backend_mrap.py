"""The mrap backend: a store whose bucket is a Multi-Region Access Point ARN.

moto cannot serve MRAP requests, so two things are mocked, and only these: the access point's
routing, by :class:`MrapRouter`, a botocore ``before-send`` hook that checks each request
botocore built for the MRAP (global endpoint host, path, SigV4A signature) and re-targets it at
a bucket on the session's moto server; and the replication between the access point's buckets,
a copy the router makes when the test says the replica has caught up. botocore's ARN handling
and SigV4A signing (awscrt), the HTTP to moto and the store's own code are real. What only real
AWS can show (routing, failover, replication time, conditional writes across regions) is
listed in the README.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from fsspec.asyn import sync
from s3_faults import ErrorStub

import offload_backends.plugin
from offload_backends.mrap import MrapStore
from offload_backends.s3 import S3Store
from offload_backends.s3_factory import open_store
from offload_core import Plugins
from offload_core.errors import (
    AccessDeniedError,
    ConfigurationError,
    MissingDependencyError,
    PayloadNotFoundError,
)
from offload_core.formats.aws import parse_s3_location
from offload_core.offloader import Offloader
from offload_core.testing import BackendConformance
from offload_core.testing.aws import MotoServer

ALIAS = "mfzwi23gnjvgw.mrap"
ARN = f"arn:aws:s3::123456789012:accesspoint/{ALIAS}"
MRAP_HOST = f"{ALIAS}.accesspoint.s3-global.amazonaws.com"
MiB = 1024 * 1024


class MrapRouter:
    """Stands in for the access point: writes go to ``home``, reads to ``replica``, both buckets
    on ``endpoint``. With ``replicate_after``, the n-th read of a key that the replica lacks
    first copies it there (replication catching up); ``None`` never copies."""

    def __init__(
        self,
        moto: MotoServer,
        home: str,
        replica: str | None = None,
        *,
        endpoint: str | None = None,
        replicate_after: int | None = None,
    ) -> None:
        self._s3 = moto.client("s3")
        self.endpoint = endpoint or moto.endpoint
        self.home = home
        self.replica = replica or home
        self.replicate_after = replicate_after
        #: (method, path, headers) of every request, as botocore built it for the MRAP.
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.reads: dict[str, int] = {}

    def attach(self, store: S3Store) -> S3Store:
        self.route(sync(store.fs.loop, store.fs.set_session).meta.events)
        return store

    def route(self, events: Any) -> None:
        """Send requests through the router: ``events`` is a client's ``meta.events``, or a
        botocore session, whose clients made afterwards inherit it."""
        events.register("before-send.s3", self._route)

    def _route(self, request: Any, **_: Any) -> None:
        url = urlsplit(request.url)
        if url.hostname != MRAP_HOST:
            raise AssertionError(f"a request left the access point: {request.url}")
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
        }
        self.requests.append((request.method, url.path, headers))
        bucket = self.home
        if request.method in ("GET", "HEAD"):
            bucket = self.replica
            key = url.path.lstrip("/")
            if key and self.replica != self.home:
                self.reads[key] = self.reads.get(key, 0) + 1
                if self.replicate_after is not None and self.reads[key] >= self.replicate_after:
                    self._replicate(key)
        query = f"?{url.query}" if url.query else ""
        request.url = f"{self.endpoint}/{bucket}{url.path}{query}"
        request.headers["host"] = urlsplit(self.endpoint).netloc

    def _replicate(self, quoted_key: str) -> None:
        from urllib.parse import unquote

        key = unquote(quoted_key)
        found = self._s3.list_objects_v2(Bucket=self.replica, Prefix=key).get("Contents", [])
        if not any(item["Key"] == key for item in found):
            source = {"Bucket": self.home, "Key": key}
            self._s3.copy_object(Bucket=self.replica, Key=key, CopySource=source)


@pytest.fixture(scope="module")
def buckets(moto_server: MotoServer) -> tuple[str, str]:
    """Two buckets behind the access point: the writer's region and a reader's."""
    names = (f"mrap-home-{uuid.uuid4().hex[:8]}", f"mrap-replica-{uuid.uuid4().hex[:8]}")
    for name in names:
        moto_server.client("s3").create_bucket(Bucket=name)
    return names


def mrap_store(**options: Any) -> MrapStore:
    """An MrapStore with fake credentials and no endpoint: only the router can reach moto."""
    options = {
        "key": "AKIAIOSFODNN7EXAMPLE",
        "secret": "fake",
        "client_kwargs": {"region_name": "eu-west-1"},
        "part_size": 5 * MiB,
        "multipart_threshold": 5 * MiB,
        "skip_instance_cache": True,
        **options,
    }
    store = open_store(f"s3://{ARN}/{uuid.uuid4().hex}", **options)
    assert isinstance(store, MrapStore)
    return store


@pytest.fixture(scope="module")
def shared_router(moto_server: MotoServer, buckets: tuple[str, str]) -> MrapRouter:
    """One router on one cached client, for the many stores of the conformance suite."""
    router = MrapRouter(moto_server, buckets[0])
    router.attach(mrap_store(replication_wait=0, skip_instance_cache=False))
    return router


class TestMrapStore(BackendConformance):
    """The whole contract through the access point's ARN (one bucket behind it, no lag)."""

    supports_metadata = True

    @pytest.fixture
    def store(self, shared_router: MrapRouter) -> MrapStore:
        # Same options, so s3fs hands out the client the router is attached to.
        return mrap_store(replication_wait=0, skip_instance_cache=False)


def test_requests_go_to_the_global_endpoint_signed_with_sigv4a(
    moto_server: MotoServer, buckets: tuple[str, str]
) -> None:
    router = MrapRouter(moto_server, buckets[0])
    store = router.attach(mrap_store(read_concurrency=2))
    with store.open_write("a/b.bin") as sink:
        sink.write(b"x" * (6 * MiB))
    with store.open_read("a/b.bin") as source:
        assert source.read() == b"x" * (6 * MiB)
    assert store.info("a/b.bin").size == 6 * MiB
    assert [info.key for info in store.list()] == ["a/b.bin"]
    store.delete("a/b.bin")
    methods = {method for method, _, _ in router.requests}
    assert methods == {"PUT", "POST", "GET", "HEAD", "DELETE"}
    for _, path, headers in router.requests:
        assert headers["authorization"].startswith("AWS4-ECDSA-P256-SHA256 Credential=")
        assert headers["x-amz-region-set"] == "*"
        assert path.startswith(f"/{store.prefix}") or path == "/"
        assert ARN not in path


def test_locations_keep_the_arn_for_the_aws_pointer(
    moto_server: MotoServer, buckets: tuple[str, str]
) -> None:
    router = MrapRouter(moto_server, buckets[0])
    store = router.attach(mrap_store())
    location = store.location("k/1")
    assert location == f"s3://{ARN}/{store.prefix}/k/1"
    assert parse_s3_location(location) == (ARN, f"{store.prefix}/k/1")
    assert store.key_for(location) == "k/1"
    publisher = Offloader(store, mode="always")
    message = publisher.prepare(b"payload through the access point")
    assert publisher.pointer_format == "aws"
    assert f'"s3BucketName":"{ARN}","s3Key":"{store.prefix}/' in message.body
    assert publisher.resolve(message.body, message.attributes) == (
        b"payload through the access point"
    )


def test_a_read_waits_out_replication_lag(
    moto_server: MotoServer, buckets: tuple[str, str]
) -> None:
    router = MrapRouter(moto_server, *buckets, replicate_after=3)
    store = router.attach(mrap_store(replication_wait=30))
    with store.open_write("late") as sink:
        sink.write(b"eventually here")
    with store.open_read("late") as source:
        assert source.read() == b"eventually here"
    assert router.reads[f"{store.prefix}/late"] == 3  # two misses, then the replica had it


@pytest.mark.parametrize("replicate_after", [1, 2, 3, 4])
def test_a_sized_read_waits_out_replication_lag(
    moto_server: MotoServer, buckets: tuple[str, str], replicate_after: int
) -> None:
    """Three ranges go out at once: while the first finds nothing all are sent again after a
    pause, and one that found nothing while the first found the object is sent again."""
    router = MrapRouter(moto_server, *buckets, replicate_after=replicate_after)
    store = router.attach(mrap_store(replication_wait=30))
    data = bytes(range(256)) * (3 * MiB // 256)
    with store.open_write("late") as sink:
        sink.write(data)
    with store.open_read_sized("late", len(data)) as source:
        assert source.read() == data
    assert router.reads[f"{store.prefix}/late"] >= 3


def test_a_sized_read_gives_up_when_the_window_closes(
    moto_server: MotoServer, buckets: tuple[str, str]
) -> None:
    router = MrapRouter(moto_server, *buckets, replicate_after=None)
    store = router.attach(mrap_store(replication_wait=0.3))
    with store.open_write("never") as sink:
        sink.write(b"x" * (3 * MiB))
    with pytest.raises(PayloadNotFoundError):
        store.open_read_sized("never", 3 * MiB)
    assert router.reads[f"{store.prefix}/never"] > 3  # the three ranges, sent more than once


def test_a_read_gives_up_when_the_window_closes(
    moto_server: MotoServer, buckets: tuple[str, str]
) -> None:
    router = MrapRouter(moto_server, *buckets, replicate_after=None)
    store = router.attach(mrap_store(replication_wait=0.3))
    with store.open_write("never") as sink:
        sink.write(b"stays home")
    with pytest.raises(PayloadNotFoundError) as raised:
        store.info("never")
    assert raised.value.__cause__ is not None
    assert router.reads[f"{store.prefix}/never"] > 1


@pytest.mark.parametrize(("wait_on_denied", "tried_again"), [(False, False), (True, True)])
def test_access_denied_waits_only_when_asked(
    moto_server: MotoServer, wait_on_denied: bool, tried_again: bool
) -> None:
    """A 403 from the access point (a stub: moto's IAM checks cannot read SigV4A)."""
    stub = ErrorStub(403, "AccessDenied")
    try:
        router = MrapRouter(moto_server, "any", endpoint=stub.endpoint)
        store = router.attach(
            mrap_store(
                replication_wait=0.3,
                wait_on_denied=wait_on_denied,
                config_kwargs={"retries": {"max_attempts": 1}},
            )
        )
        with pytest.raises(AccessDeniedError):
            store.open_read("k")
        assert (stub.requests > 1) is tried_again
    finally:
        stub.close()


# -- selection and dependencies -----------------------------------------------------------------


def test_the_backend_is_chosen_by_the_arn_and_registered_by_name() -> None:
    plugins = Plugins.from_modules(offload_backends.plugin)
    assert plugins.entry_for_url(f"s3://{ARN}/p").name == "s3"
    entry = plugins.registry.get("backend", "mrap")
    assert (entry.load(), entry.extra, entry.schemes) == (MrapStore, "mrap", ())
    assert isinstance(open_store(f"s3://{ARN}/p", key="k", secret="s"), MrapStore)
    assert type(open_store("s3://plain-bucket/p", key="k", secret="s")) is S3Store


def test_the_stores_refuse_each_others_buckets() -> None:
    with pytest.raises(ConfigurationError, match="mrap"):
        S3Store(f"s3://{ARN}/p")
    with pytest.raises(ConfigurationError, match="not a Multi-Region Access Point"):
        MrapStore("s3://plain-bucket/p")


@pytest.fixture
def without_awscrt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports of awscrt fail, as they do where the mrap extra is not installed."""
    for name in [m for m in sys.modules if m == "awscrt" or m.startswith("awscrt.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "awscrt", None)


@pytest.mark.usefixtures("without_awscrt")
def test_a_missing_awscrt_names_the_mrap_extra() -> None:
    with pytest.raises(MissingDependencyError, match=r"offload\[mrap\]") as raised:
        open_store(f"s3://{ARN}/p")
    assert (raised.value.extra, raised.value.module) == ("mrap", "awscrt")
    with pytest.raises(MissingDependencyError, match=r"offload\[mrap\]"):
        Offloader(f"s3://{ARN}/p")

"""The S3 store's requests on a boto3 client: what the store does without s3fs and aiohttp.

:class:`~offload_backends.s3.S3Store` sends every request through one awaitable
``call(method, **params)`` on an event loop. Here that call runs the boto3 client's method on a
bounded thread pool and is awaited on one I/O loop thread (the synchronous face) or the
caller's loop (the asynchronous face), so the same upload and download logic (parts,
concurrency, resumed reads, checksums) runs on the client a Lambda runtime already has.
Response bodies become awaitable too. The store's request options (encryption, ACL, expected
owner) go to the operations whose input takes them, as s3fs's ``s3_additional_kwargs`` do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING, Any

from ._loop import io_loop

if TYPE_CHECKING:
    import asyncio

__all__ = ["Boto3Requests", "boto3_s3_client", "send_bodies_at_once"]

#: s3fs storage options -> boto3 client arguments.
_CREDENTIALS = {"key": "aws_access_key_id", "secret": "aws_secret_access_key"}
_CREDENTIALS["token"] = "aws_session_token"


class _AsyncBody:
    """A botocore ``StreamingBody`` read on the pool, awaited on the loop. Its bytes are taken
    from the HTTP response underneath: botocore would otherwise compute the object's checksum a
    second time, which the store's reader does itself across resumes and ranges (and it tells a
    short body from a complete one by the range it asked for)."""

    __slots__ = ("_pool", "_read", "_stream")

    def __init__(self, stream: Any, pool: ThreadPoolExecutor) -> None:
        self._stream = stream
        self._pool = pool
        raw = getattr(stream, "_raw_stream", None)
        read = getattr(raw, "read", None)
        self._read = read if callable(read) else stream.read

    async def read(self, size: int = -1) -> bytes:
        import asyncio

        data: bytes = await asyncio.get_running_loop().run_in_executor(self._pool, self._read, size)
        return data

    def close(self) -> None:
        self._stream.close()


class Boto3Requests:
    """S3 requests of one store on a boto3 client.

    :param client: a boto3 S3 client (thread-safe; its own retries apply).
    :param extra: request parameters added to every operation that takes them.
    :param threads: requests (and body reads) in flight at once, for every stream of the store.

    A store made before ``fork()`` cannot be used in the child (its client's connections and
    threads stay with the parent): that raises ``RuntimeError`` rather than waiting forever.
    """

    def __init__(self, client: Any, extra: Mapping[str, Any], threads: int) -> None:
        self.client = client
        self._extra = dict(extra)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="offload-s3")
        self._accepted: dict[str, frozenset[str]] = {}
        self._pid = os.getpid()

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise RuntimeError(
                "this S3 store was made in another process (before fork()); make the store, "
                "or the Offloader, in this process"
            )

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the synchronous face awaits its requests on (started on first use)."""
        self._check_process()
        return io_loop()

    def _params(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if not self._extra:
            return dict(params)
        accepted = self._accepted.get(method)
        if accepted is None:
            model = self.client.meta.service_model
            name = self.client.meta.method_to_api_mapping[method]
            accepted = frozenset(model.operation_model(name).input_shape.members)
            self._accepted[method] = accepted
        extra = {k: v for k, v in self._extra.items() if k in accepted and k not in params}
        return {**params, **extra}

    def _run(self, method: str, params: Mapping[str, Any]) -> Any:
        response = getattr(self.client, method)(**self._params(method, params))
        if "Body" in response and method == "get_object":
            response["Body"] = _AsyncBody(response["Body"], self._pool)
        return response

    async def call(self, method: str, **params: Any) -> Any:
        """``await call("get_object", Bucket=..., Key=...)``, as ``S3FileSystem._call_s3``.

        A request already sent cannot be taken back from its thread: cancelling the call waits
        for it to end before the cancellation goes on, so that whoever cancelled (an aborted
        upload) knows no part is still arriving, and closes the body of the response nobody
        will read (a cancelled ranged read), which gives its connection back."""
        import asyncio

        self._check_process()
        sent = asyncio.get_running_loop().run_in_executor(
            self._pool, partial(self._run, method, params)
        )
        try:
            return await asyncio.shield(sent)
        except asyncio.CancelledError:
            with suppress(BaseException):
                response = await sent
                if isinstance(response, Mapping) and "Body" in response:
                    response["Body"].close()
            raise


def send_bodies_at_once(client: Any) -> None:
    """Have ``client`` send upload bodies right after their headers, without the
    ``Expect: 100-continue`` botocore adds to every upload: waiting for S3's ``100 Continue``
    costs each part a round trip (70 ms across regions). What it would save, not sending a
    body S3 refuses anyway (a denied or redirected request), costs at most one part here."""
    client.meta.events.register_last(
        "before-call.s3", _drop_expect, unique_id="offload-send-bodies-at-once"
    )


def _drop_expect(params: dict[str, Any], **_: Any) -> None:
    params.get("headers", {}).pop("Expect", None)


def boto3_s3_client(options: Mapping[str, Any]) -> Any:
    """A boto3 S3 client from s3fs-style storage options (``key``/``secret``/``token``,
    ``profile``, ``endpoint_url``, ``client_kwargs``, ``config_kwargs``)."""
    import boto3
    from botocore.config import Config

    from offload_core.errors import ConfigurationError

    options = dict(options)
    session_args = {"profile_name": options.pop("profile", None)}
    client_args: dict[str, Any] = dict(options.pop("client_kwargs", None) or {})
    for ours, theirs in _CREDENTIALS.items():
        if options.get(ours) is not None:
            client_args[theirs] = options.pop(ours)
        options.pop(ours, None)
    if options.get("endpoint_url") is not None:
        client_args["endpoint_url"] = options.pop("endpoint_url")
    options.pop("endpoint_url", None)
    config = dict(options.pop("config_kwargs", None) or {})
    # s3fs's timeouts, not botocore's minute: a stalled stream is resumed sooner.
    config.setdefault("connect_timeout", 5)
    config.setdefault("read_timeout", 15)
    if options:
        raise ConfigurationError(
            f"the S3 store on a boto3 client does not take {sorted(options)}; install s3fs "
            "(offload[s3]) for s3fs's options, or pass client=boto3.client('s3', ...)"
        )
    if session_args["profile_name"] is None:  # the default session: its loaded data is shared
        client = boto3.client("s3", config=Config(**config), **client_args)
    else:
        client = boto3.Session(**session_args).client("s3", config=Config(**config), **client_args)
    send_bodies_at_once(client)
    return client

"""A local AWS endpoint for tests and demos: moto in server mode, reached over real HTTP.

moto's in-process ``mock_aws`` does not intercept aiobotocore (s3fs), so everything here talks to a
:class:`MotoServer` on 127.0.0.1 at a free port, as a client in another process would. Needs the
``test`` extra (``moto[server]``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

__all__ = ["DEFAULT_ACCOUNT", "FAKE_CREDENTIALS", "MotoServer"]

#: The account moto puts requests signed with :data:`FAKE_CREDENTIALS` in.
DEFAULT_ACCOUNT = "123456789012"

#: moto accepts any credentials; these are passed explicitly so a developer's real ones never are.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class MotoServer:
    """moto's threaded server on 127.0.0.1 and a free port; use as a context manager."""

    def __init__(self, region: str = "us-east-1") -> None:
        from moto.server import ThreadedMotoServer

        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> MotoServer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self, service: str, region: str | None = None, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` bound to this server."""
        import boto3

        options: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "region_name": region or self.region,
            **FAKE_CREDENTIALS,
        }
        options.update(kwargs)
        return boto3.client(service, **options)

    def storage_options(
        self, region: str | None = None, credentials: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """s3fs storage options reaching this server (``key``/``secret``/``endpoint_url``);
        ``credentials`` as :meth:`assume_role` returns them, else :data:`FAKE_CREDENTIALS`."""
        creds = credentials or FAKE_CREDENTIALS
        options: dict[str, Any] = {
            "key": creds["aws_access_key_id"],
            "secret": creds["aws_secret_access_key"],
            "endpoint_url": self.endpoint,
            "client_kwargs": {"region_name": region or self.region},
        }
        if creds.get("aws_session_token"):
            options["token"] = creds["aws_session_token"]
        return options

    def assume_role(
        self, account_id: str, role_name: str = "offload-test", session_name: str = "offload"
    ) -> dict[str, str]:
        """Credentials (boto3 keyword names) for ``role_name`` in ``account_id``, from STS.

        moto keeps every account apart: requests signed with them act as that account, which
        is how tests put a publisher and a subscriber in different accounts."""
        response = self.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{role_name}", RoleSessionName=session_name
        )
        creds = response["Credentials"]
        return {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }

    @contextmanager
    def iam_enforced(self) -> Iterator[None]:
        """Make the server check signatures and IAM policies while the block runs.

        Requests must then be signed with keys moto issued (IAM or STS) and allowed by their
        identity's policies; moto does not evaluate bucket policies or ``s3:ListBucket`` for
        missing keys. Affects every client of the server, so keep the block short."""
        previous = self._reset_auth("0")
        try:
            yield
        finally:
            self._reset_auth(previous)

    def _reset_auth(self, count: str) -> str:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},  # not a form: moto reads the raw body
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
        return str(answer["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])

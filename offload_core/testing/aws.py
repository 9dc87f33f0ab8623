"""A local AWS endpoint for tests and demos: moto in server mode, reached over real HTTP.

moto's in-process ``mock_aws`` does not intercept aiobotocore (s3fs), so everything here talks to a
:class:`MotoServer` on 127.0.0.1 at a free port, as a client in another process would. Needs the
``test`` extra (``moto[server]``).
"""

from __future__ import annotations

import copy
import json
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

__all__ = ["DEFAULT_ACCOUNT", "FAKE_CREDENTIALS", "MotoServer", "moto_policy"]

#: The account moto puts requests signed with :data:`FAKE_CREDENTIALS` in.
DEFAULT_ACCOUNT = "123456789012"

#: moto accepts any credentials; these are passed explicitly so a developer's real ones never are.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


#: IAM actions, and the API operations AWS authorizes with them that moto checks under their own
#: names (its IAM check reads the operation's name as the action).
_OPERATIONS = {
    "s3:PutObject": ("s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload"),
    "s3:GetObject": ("s3:HeadObject",),
    "s3:ListBucket": ("s3:ListObjectsV2", "s3:ListObjects", "s3:HeadBucket"),
    "sqs:SendMessage": ("sqs:SendMessageBatch",),
    "sqs:DeleteMessage": ("sqs:DeleteMessageBatch",),
    "sqs:ChangeMessageVisibility": ("sqs:ChangeMessageVisibilityBatch",),
    "sns:Publish": ("sns:PublishBatch",),
}
#: Services whose requests moto authorizes against the resource ``*``, whatever they name.
_UNSCOPED_SERVICES = frozenset({"sns", "events", "kms"})


def moto_policy(document: Mapping[str, Any]) -> dict[str, Any]:
    """An identity policy as moto's IAM check must read it to mean what it means on AWS.

    moto takes the API operation's name for the action (``s3:UploadPart``,
    ``sqs:SendMessageBatch``) where AWS authorizes it with another (``s3:PutObject``,
    ``sqs:SendMessage``), so those names are added next to the action. It checks SNS,
    EventBridge and KMS requests against the resource ``*``, so their statements are widened to
    it: moto cannot tell one topic, bus or key from another. S3 and SQS statements keep their
    resources (moto checks ``arn:aws:s3:::bucket/key`` and the queue's ARN)."""
    out = copy.deepcopy(dict(document))
    statements = out["Statement"]
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else list(actions)
        actions += [name for action in actions for name in _OPERATIONS.get(action, ())]
        statement["Action"] = list(dict.fromkeys(actions))
        services = {action.split(":", 1)[0] for action in actions}
        if services and services <= _UNSCOPED_SERVICES:
            statement["Resource"] = "*"
        elif services & _UNSCOPED_SERVICES:
            raise ValueError(f"statement mixes services moto checks differently: {statement}")
    return out


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

        return boto3.client(service, **self.client_options(region, **kwargs))

    def client_options(self, region: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """What a client bound to this server is made with (boto3's ``client()`` and
        aiobotocore's ``create_client()`` take the same)."""
        options: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "region_name": region or self.region,
            **FAKE_CREDENTIALS,
        }
        options.update(kwargs)
        return options

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

    def role_with_policy(
        self,
        policy: Mapping[str, Any],
        *,
        account: str = DEFAULT_ACCOUNT,
        name: str | None = None,
    ) -> dict[str, str]:
        """Credentials (as :meth:`assume_role`) of a new role in ``account`` whose only
        permissions are ``policy``, read as AWS reads it (:func:`moto_policy`). Call it before
        :meth:`iam_enforced`: creating the role is not in the policy."""
        name = name or f"offload-{uuid.uuid4().hex[:12]}"
        admin = {} if account == DEFAULT_ACCOUNT else self.assume_role(account, "offload-admin")
        iam = self.client("iam", **admin)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
            ],
        }
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(
            RoleName=name, PolicyName=name, PolicyDocument=json.dumps(moto_policy(policy))
        )
        return self.assume_role(account, name)

    @contextmanager
    def iam_enforced(self) -> Iterator[None]:
        """Make the server check signatures and IAM policies while the block runs.

        Requests must then be signed with keys moto issued (IAM or STS) and allowed by their
        identity's policies (:meth:`role_with_policy`); moto does not evaluate bucket, queue,
        topic, bus or key policies, nor ``s3:ListBucket`` for missing keys, and checks SNS,
        EventBridge and KMS actions but not which resource they name. Affects every client of
        the server, so keep the block short."""
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

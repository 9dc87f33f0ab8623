"""The S3 lifecycle rule and the access policies a cross-account deployment needs, as JSON
documents to review and apply with the AWS tools; nothing here calls AWS or changes a resource.

Problems with what the caller asked for raise :class:`~offload_core.errors.ConfigurationError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offload_core.errors import ConfigurationError
from offload_core.formats.aws import parse_s3_location, s3_location_problem

__all__ = ["POLICY_VERSION", "access_policies", "lifecycle_configuration"]

POLICY_VERSION = "2012-10-17"
_ACCOUNT = re.compile(r"[0-9]{12}\Z")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}\Z")
_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):(?P<service>[a-z0-9-]+)"
    r":(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}):(?P<account>[0-9]{12}):(?P<resource>.+)\Z"
)
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: Per service: what the resource part looks like, and an example for the error message.
_RESOURCES = {
    "sns": (
        re.compile(r"[A-Za-z0-9_-]{1,256}(?:\.fifo)?\Z"),
        "arn:aws:sns:us-east-1:111122223333:orders",
    ),
    "sqs": (
        re.compile(r"[A-Za-z0-9_-]{1,80}(?:\.fifo)?\Z"),
        "arn:aws:sqs:eu-west-1:444455556666:orders",
    ),
    "kms": (
        re.compile(rf"key/(?:mrk-[0-9a-f]{{32}}|{_UUID})\Z"),
        "arn:aws:kms:us-east-1:111122223333:key/<key id> (a key, not an alias: key policies "
        "and grants do not follow aliases)",
    ),
}


@dataclass(frozen=True)
class _Arn:
    value: str
    partition: str
    region: str
    account: str


def _arn(value: str, service: str, what: str) -> _Arn:
    resource, example = _RESOURCES[service]
    match = _ARN.match(value)
    if match is None or match["service"] != service or not resource.match(match["resource"]):
        raise ConfigurationError(f"{what} must be an ARN like {example}, got {value!r}")
    return _Arn(value, match["partition"], match["region"], match["account"])


def _account(value: str, what: str) -> str:
    if not _ACCOUNT.match(value):
        raise ConfigurationError(f"{what} must be a 12-digit AWS account id, got {value!r}")
    return value


def _bucket(bucket: str) -> str:
    if bucket.startswith("arn:"):
        raise ConfigurationError(
            f"{bucket!r} is an access point ARN: lifecycle rules and bucket policies belong to "
            "each bucket behind it; name the bucket"
        )
    problem = s3_location_problem(bucket, "key")
    if problem is not None:
        raise ConfigurationError(f"{problem}; name the bucket that holds the payloads")
    return bucket


def _key_prefix(*parts: str) -> str:
    """Prefix parts joined as a key prefix ending in ``/``; ``""`` for the whole bucket."""
    joined = "/".join(p.strip("/") for p in parts if p.strip("/"))
    return f"{joined}/" if joined else ""


def lifecycle_configuration(store_url: str, days: int, prefix: str = "") -> dict[str, Any]:
    """The S3 lifecycle configuration for a payload store: expire payloads after ``days``, and
    old versions and incomplete multipart uploads after a day. ``prefix`` is relative to the
    store's root. For ``aws s3api put-bucket-lifecycle-configuration``; never applied here."""
    if days < 1:
        raise ConfigurationError("--days must be at least 1")
    if not store_url.startswith("s3://"):
        raise ConfigurationError(
            f"lifecycle rules are for S3 stores (s3://bucket/prefix), not {store_url!r}; for other "
            "stores run 'offload gc' on a schedule"
        )
    parsed = parse_s3_location(store_url if "/" in store_url[5:] else store_url + "/")
    if parsed is None:
        raise ConfigurationError(f"{store_url!r} does not name a bucket")
    bucket, root = parsed
    _bucket(bucket)
    rule = {
        "ID": f"offload-expire-payloads-after-{days}-days",
        "Status": "Enabled",
        "Filter": {"Prefix": _key_prefix(root, prefix)},
        "Expiration": {"Days": days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    return {"Rules": [rule]}


def _statement(
    sid: str,
    principal: Any,
    action: str | list[str],
    resource: str | list[str],
    *,
    effect: str = "Allow",
    condition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A policy statement; ``principal`` is ``None`` in identity policies."""
    out: dict[str, Any] = {"Sid": sid, "Effect": effect}
    if principal is not None:
        out["Principal"] = principal
    out.update(Action=action, Resource=resource)
    if condition:
        out["Condition"] = condition
    return out


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def access_policies(
    *,
    publisher: str,
    subscribers: Sequence[str],
    bucket: str,
    prefix: str = "",
    kms_key: str | None = None,
    topic: str | None = None,
    queue: str | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """Least-privilege policy documents for a publisher account and subscriber accounts.

    Resource policies grant accounts (``arn:aws:iam::<account>:root``); each account then grants
    its own roles with the identity policies. Keys of the result: ``bucket_policy``,
    ``kms_key_policy_statements`` (to merge into the key policy, never to replace it),
    ``topic_policy``, ``queue_policy``, ``publisher_identity_policy`` and
    ``subscriber_identity_policy``; documents for resources not given are left out.
    """
    publisher = _account(publisher, "the publisher account")
    if not subscribers:
        raise ConfigurationError("name at least one subscriber account")
    subs = list(dict.fromkeys(_account(s, "a subscriber account") for s in subscribers))
    bucket = _bucket(bucket)
    key = _arn(kms_key, "kms", "the KMS key") if kms_key else None
    sns = _arn(topic, "sns", "the topic") if topic else None
    sqs = _arn(queue, "sqs", "the queue") if queue else None
    if sqs is not None and sns is None:
        raise ConfigurationError("the queue policy lets a topic send to the queue: pass --topic")
    partitions = {a.partition for a in (key, sns, sqs) if a is not None}
    if len(partitions) > 1:
        raise ConfigurationError(f"the ARNs are in different partitions: {sorted(partitions)}")
    partition = partitions.pop() if partitions else "aws"
    if region is not None and not _REGION.match(region):
        raise ConfigurationError(f"{region!r} is not an AWS region name like us-east-1")
    if key is not None and region is not None and key.region != region:
        raise ConfigurationError(
            f"the KMS key is in {key.region} but the bucket in {region}: S3 encrypts with keys "
            "of the bucket's region only"
        )
    region = region or (key.region if key else None)

    def accounts(*ids: str) -> dict[str, str | list[str]]:
        arns = [f"arn:{partition}:iam::{a}:root" for a in ids]
        return {"AWS": arns[0] if len(arns) == 1 else arns}

    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    objects = f"{bucket_arn}/{_key_prefix(prefix)}*"
    write = ["s3:PutObject", "s3:AbortMultipartUpload"]
    # S3 decrypts the parts of a multipart upload to complete it, so writers need Decrypt too.
    encrypt = ["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"]
    consume = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    ]
    insecure = {"Bool": {"aws:SecureTransport": "false"}}
    docs: dict[str, Any] = {
        "bucket_policy": _document(
            _statement(
                "DenyInsecureTransport",
                "*",
                "s3:*",
                [bucket_arn, f"{bucket_arn}/*"],
                effect="Deny",
                condition=insecure,
            ),
            _statement("PublisherWritesPayloads", accounts(publisher), write, objects),
            _statement("SubscribersReadPayloads", accounts(*subs), "s3:GetObject", objects),
        )
    }
    publisher_grants = [_statement("WritePayloads", None, write, objects)]
    subscriber_grants = [_statement("ReadPayloads", None, "s3:GetObject", objects)]
    if key is not None:
        via = None
        if region is not None:
            domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
            via = {"StringEquals": {"kms:ViaService": f"s3.{region}.{domain}"}}
        docs["kms_key_policy_statements"] = [
            _statement(
                "PublisherEncryptsPayloads", accounts(publisher), encrypt, "*", condition=via
            ),
            _statement(
                "SubscribersDecryptPayloads", accounts(*subs), "kms:Decrypt", "*", condition=via
            ),
        ]
        publisher_grants.append(_statement("EncryptPayloads", None, encrypt, key.value))
        subscriber_grants.append(_statement("DecryptPayloads", None, "kms:Decrypt", key.value))
    if sns is not None:
        protocols = {"StringEquals": {"sns:Protocol": ["sqs", "lambda"]}}
        docs["topic_policy"] = _document(
            _statement("PublisherPublishes", accounts(publisher), "sns:Publish", sns.value),
            _statement(
                "SubscribersSubscribe",
                accounts(*subs),
                "sns:Subscribe",
                sns.value,
                condition=protocols,
            ),
        )
        publisher_grants.append(_statement("PublishPointers", None, "sns:Publish", sns.value))
        subscriber_grants.append(_statement("SubscribeToTopic", None, "sns:Subscribe", sns.value))
    if sqs is not None and sns is not None:
        docs["queue_policy"] = _document(
            _statement(
                "TopicSendsPointers",
                {"Service": "sns.amazonaws.com"},
                "sqs:SendMessage",
                sqs.value,
                condition={"ArnEquals": {"aws:SourceArn": sns.value}},
            )
        )
        subscriber_grants.append(_statement("ConsumeQueue", None, consume, sqs.value))
    docs["publisher_identity_policy"] = _document(*publisher_grants)
    docs["subscriber_identity_policy"] = _document(*subscriber_grants)
    return docs

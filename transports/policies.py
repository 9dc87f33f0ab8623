"""The S3 lifecycle rule and the access policies a deployment needs, as JSON documents to review
and apply with the AWS tools; nothing here calls AWS or changes a resource.

Each identity policy grants a role what the library calls for it, and nothing more (IAM authorizes
some calls under another action's name, given in brackets):

- publisher: S3 ``PutObject``, ``CreateMultipartUpload``, ``UploadPart``,
  ``CompleteMultipartUpload`` (all ``s3:PutObject``), ``AbortMultipartUpload``, and
  ``DeleteObject`` for a payload whose send failed; SQS ``GetQueueAttributes`` and
  ``SendMessage``/``SendMessageBatch`` (``sqs:SendMessage``); SNS ``GetTopicAttributes`` and
  ``Publish``/``PublishBatch`` (``sns:Publish``); EventBridge ``PutEvents``; through SSE-KMS,
  ``kms:GenerateDataKey`` and ``kms:Decrypt`` (S3 decrypts the data key to complete a multipart
  upload).
- consumer: S3 ``GetObject`` (ranged too) and ``HeadObject`` (``s3:GetObject``); SQS
  ``ReceiveMessage``, ``DeleteMessageBatch`` (``sqs:DeleteMessage``) and
  ``ChangeMessageVisibility``; ``kms:Decrypt`` through S3.
- deleting consumer (``delete_payload=True``): the consumer's, and S3 ``DeleteObject``.
- Lambda function role: the consumer's S3 and KMS reads and, with a queue, what the event source
  mapping calls with the function's role: ``ReceiveMessage``, ``DeleteMessage``,
  ``GetQueueAttributes``.

Resource policies grant accounts (``arn:aws:iam::<account>:root``); each account then grants its
own roles with the identity policies. Problems with what the caller asked for raise
:class:`~offload_core.errors.ConfigurationError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from offload_core.aws.arn import Arn, is_mrap_arn, is_region, parse_arn
from offload_core.errors import ConfigurationError
from offload_core.formats.aws import parse_s3_location, s3_location_problem

__all__ = ["POLICY_VERSION", "access_policies", "lifecycle_configuration"]

POLICY_VERSION = "2012-10-17"
_ACCOUNT = re.compile(r"[0-9]{12}\Z")
#: The partitions whose service domains the policies know (``amazonaws.com``, ``.com.cn``).
_PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov"})
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
    "events": (
        re.compile(r"event-bus/[A-Za-z0-9._/-]{1,256}\Z"),
        "arn:aws:events:us-east-1:111122223333:event-bus/orders",
    ),
    "kms": (
        re.compile(rf"key/(?:mrk-[0-9a-f]{{32}}|{_UUID})\Z"),
        "arn:aws:kms:us-east-1:111122223333:key/<key id> (a key, not an alias: key policies "
        "and grants do not follow aliases)",
    ),
}

# What each role calls, as IAM actions.
#: PutObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload; AbortMultipartUpload.
_WRITE = ["s3:PutObject", "s3:AbortMultipartUpload"]
#: GetObject (whole, ranged, conditional) and HeadObject.
_READ = ["s3:GetObject"]
#: DeleteObject: a publisher's payload whose send failed, a deleting consumer's acknowledged one.
_DELETE = ["s3:DeleteObject"]
_ENCRYPT = ["kms:GenerateDataKey", "kms:Decrypt"]
_DECRYPT = ["kms:Decrypt"]
#: GetTopicAttributes (the topic's limit, read once); Publish and PublishBatch.
_PUBLISH = ["sns:Publish", "sns:GetTopicAttributes"]
#: GetQueueAttributes (limit, FIFO settings, read once); SendMessage and SendMessageBatch.
_SEND = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
_PUT_EVENTS = ["events:PutEvents"]
#: ReceiveMessage; DeleteMessageBatch (ack); ChangeMessageVisibility (release, extend).
_CONSUME = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
#: What a Lambda event source mapping calls with the function's role.
_POLL = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]


def _arn(value: str, service: str, what: str) -> Arn:
    """``value`` as a regional ARN of ``service`` in a known partition, with a valid resource."""
    resource, example = _RESOURCES[service]
    arn = parse_arn(value)
    if (
        arn is None
        or arn.partition not in _PARTITIONS
        or arn.service != service
        or not is_region(arn.region)
        or not arn.account
        or not resource.match(arn.resource)
    ):
        raise ConfigurationError(f"{what} must be an ARN like {example}, got {value!r}")
    return arn


def _mrap(value: str) -> Arn:
    arn = parse_arn(value)
    if arn is None or arn.partition not in _PARTITIONS or not is_mrap_arn(value):
        raise ConfigurationError(
            "the Multi-Region Access Point must be an ARN like "
            f"arn:aws:s3::111122223333:accesspoint/mfzwi23gnjvgw.mrap, got {value!r}"
        )
    return arn


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
    action: str | Sequence[str],
    resource: str | list[str],
    *,
    effect: str = "Allow",
    condition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A policy statement; ``principal`` is ``None`` in identity policies, and a single action
    is written as a string."""
    out: dict[str, Any] = {"Sid": sid, "Effect": effect}
    if principal is not None:
        out["Principal"] = principal
    actions = [action] if isinstance(action, str) else list(action)
    out.update(Action=actions[0] if len(actions) == 1 else actions, Resource=resource)
    if condition:
        out["Condition"] = condition
    return out


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def access_policies(
    *,
    publisher: str,
    subscribers: Sequence[str] = (),
    bucket: str,
    prefix: str = "",
    kms_key: str | None = None,
    topic: str | None = None,
    queue: str | None = None,
    event_bus: str | None = None,
    mrap: str | None = None,
    deleting_subscribers: Sequence[str] = (),
    region: str | None = None,
) -> dict[str, Any]:
    """Least-privilege policy documents for a publisher account and subscriber accounts.

    The publisher publishes to ``topic`` and puts events on ``event_bus``; ``queue`` is the queue
    consumers read, fed by the topic, by rules on the bus, or (given neither) by the publisher
    directly. With ``mrap`` payloads go through that Multi-Region Access Point, and ``bucket`` is
    one of the buckets behind it (the bucket policy is for each of them, with its name).
    ``deleting_subscribers`` are subscriber accounts whose consumers delete payloads on
    acknowledgement.

    Keys of the result, documents for resources not given left out: ``bucket_policy``,
    ``mrap_policy``, ``kms_key_policy_statements`` (to merge into the key policy, never to
    replace it), ``topic_policy``, ``queue_policy``, ``event_bus_policy``, and the identity
    policies ``publisher_identity_policy``, ``subscriber_identity_policy`` (the consumer's),
    ``deleting_subscriber_identity_policy`` and ``lambda_execution_policy`` (a consuming Lambda
    function's role).
    """
    publisher = _account(publisher, "the publisher account")
    deleting = _accounts(deleting_subscribers, "a deleting subscriber account")
    readers = list(dict.fromkeys([*_accounts(subscribers, "a subscriber account"), *deleting]))
    if not readers:
        raise ConfigurationError("name at least one subscriber account")
    bucket = _bucket(bucket)
    key = _arn(kms_key, "kms", "the KMS key") if kms_key else None
    sns = _arn(topic, "sns", "the topic") if topic else None
    sqs = _arn(queue, "sqs", "the queue") if queue else None
    bus = _arn(event_bus, "events", "the event bus") if event_bus else None
    access_point = _mrap(mrap) if mrap else None
    partitions = {a.partition for a in (key, sns, sqs, bus, access_point) if a is not None}
    if len(partitions) > 1:
        raise ConfigurationError(f"the ARNs are in different partitions: {sorted(partitions)}")
    partition = partitions.pop() if partitions else "aws"
    if region is not None and not is_region(region):
        raise ConfigurationError(f"{region!r} is not an AWS region name like us-east-1")
    if key is not None and region is not None and key.region != region and not access_point:
        raise ConfigurationError(
            f"the KMS key is in {key.region} but the bucket in {region}: S3 encrypts with keys "
            "of the bucket's region only"
        )
    region = region or (key.region if key else None)

    def accounts(*ids: str) -> dict[str, str | list[str]]:
        return _principals(partition, ids)

    def account_grants(resource: str, condition: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Who may do what with the payloads, granted by the bucket (or the access point)."""
        grants = [
            _statement(
                "PublisherWritesPayloads",
                accounts(publisher),
                _WRITE,
                resource,
                condition=condition,
            ),
            _statement(
                "PublisherDeletesUnsentPayloads",
                accounts(publisher),
                _DELETE,
                resource,
                condition=condition,
            ),
            _statement(
                "SubscribersReadPayloads", accounts(*readers), _READ, resource, condition=condition
            ),
        ]
        if deleting:
            grants.append(
                _statement(
                    "DeletingSubscribersDeletePayloads",
                    accounts(*deleting),
                    _DELETE,
                    resource,
                    condition=condition,
                )
            )
        return grants

    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    objects = f"{bucket_arn}/{_key_prefix(prefix)}*"
    payloads = objects
    through = None
    docs: dict[str, Any] = {}
    if access_point is not None:
        payloads = f"{access_point.value}/object/{_key_prefix(prefix)}*"
        # The bucket lets requests in only through access points of the MRAP's account.
        through = {"StringEquals": {"s3:DataAccessPointAccount": access_point.account}}
    insecure = {"Bool": {"aws:SecureTransport": "false"}}
    docs["bucket_policy"] = _document(
        _statement(
            "DenyInsecureTransport",
            "*",
            "s3:*",
            [bucket_arn, f"{bucket_arn}/*"],
            effect="Deny",
            condition=insecure,
        ),
        *account_grants(objects, through),
    )
    if access_point is not None:
        docs["mrap_policy"] = _document(*account_grants(payloads, None))
    publisher_grants = [
        _statement("WritePayloads", None, _WRITE, payloads),
        _statement("DeleteUnsentPayloads", None, _DELETE, payloads),
    ]
    reader_grants = [_statement("ReadPayloads", None, _READ, payloads)]
    if key is not None:
        domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
        key_arn = key.value
        if access_point is not None:
            # Buckets in several regions: S3 in any of them, and the replicas of a multi-Region key.
            via = {"StringLike": {"kms:ViaService": f"s3.*.{domain}"}}
            if key.resource.startswith("key/mrk-"):
                key_arn = f"arn:{partition}:kms:*:{key.account}:{key.resource}"
        else:
            via = {"StringEquals": {"kms:ViaService": f"s3.{region}.{domain}"}}
        docs["kms_key_policy_statements"] = [
            _statement(
                "PublisherEncryptsPayloads", accounts(publisher), _ENCRYPT, "*", condition=via
            ),
            _statement(
                "SubscribersDecryptPayloads", accounts(*readers), _DECRYPT, "*", condition=via
            ),
        ]
        publisher_grants.append(
            _statement("EncryptPayloads", None, _ENCRYPT, key_arn, condition=via)
        )
        reader_grants.append(_statement("DecryptPayloads", None, _DECRYPT, key_arn, condition=via))
    if sns is not None:
        protocols = {"StringEquals": {"sns:Protocol": ["sqs", "lambda"]}}
        docs["topic_policy"] = _document(
            _statement("PublisherPublishes", accounts(publisher), _PUBLISH, sns.value),
            _statement(
                "SubscribersSubscribe",
                accounts(*readers),
                "sns:Subscribe",
                sns.value,
                condition=protocols,
            ),
        )
        publisher_grants.append(_statement("PublishPointers", None, _PUBLISH, sns.value))
    if bus is not None:
        docs["event_bus_policy"] = _document(
            _statement("PublisherPutsEvents", accounts(publisher), _PUT_EVENTS, bus.value)
        )
        publisher_grants.append(_statement("PutEvents", None, _PUT_EVENTS, bus.value))
    consumer_grants = list(reader_grants)
    lambda_grants = list(reader_grants)
    if sqs is not None:
        docs["queue_policy"] = _document(*_queue_grants(sqs, sns, bus, publisher, readers))
        if sns is None and bus is None:
            publisher_grants.append(_statement("SendPointers", None, _SEND, sqs.value))
        consumer_grants.append(_statement("ConsumeQueue", None, _CONSUME, sqs.value))
        lambda_grants.append(_statement("PollQueue", None, _POLL, sqs.value))
    docs["publisher_identity_policy"] = _document(*publisher_grants)
    docs["subscriber_identity_policy"] = _document(*consumer_grants)
    if deleting:
        docs["deleting_subscriber_identity_policy"] = _document(
            *consumer_grants, _statement("DeletePayloads", None, _DELETE, payloads)
        )
    docs["lambda_execution_policy"] = _document(*lambda_grants)
    return docs


def _principals(partition: str, ids: Sequence[str]) -> dict[str, str | list[str]]:
    arns = [f"arn:{partition}:iam::{a}:root" for a in ids]
    return {"AWS": arns[0] if len(arns) == 1 else arns}


def _accounts(values: Sequence[str], what: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    return [_account(value, what) for value in values]


def _queue_grants(
    queue: Arn,
    topic: Arn | None,
    bus: Arn | None,
    publisher: str,
    readers: Sequence[str],
) -> list[dict[str, Any]]:
    """Who sends to the queue (the topic, the bus's rules, or the publisher), and subscribers of
    other accounts than the queue's, who consume it."""
    grants: list[dict[str, Any]] = []
    if topic is not None:
        grants.append(
            _statement(
                "TopicSendsPointers",
                {"Service": "sns.amazonaws.com"},
                "sqs:SendMessage",
                queue.value,
                condition={"ArnEquals": {"aws:SourceArn": topic.value}},
            )
        )
    if bus is not None:
        name = bus.resource.removeprefix("event-bus/")
        rules = "rule/*" if name == "default" else f"rule/{name}/*"
        source = f"arn:{bus.partition}:events:{bus.region}:{bus.account}:{rules}"
        grants.append(
            _statement(
                "RulesSendEvents",
                {"Service": "events.amazonaws.com"},
                "sqs:SendMessage",
                queue.value,
                condition={"ArnLike": {"aws:SourceArn": source}},
            )
        )
    if topic is None and bus is None:
        grants.append(
            _statement(
                "PublisherSendsPointers",
                _principals(queue.partition, [publisher]),
                _SEND,
                queue.value,
            )
        )
    others = [a for a in readers if a != queue.account]
    if others:
        consume = list(dict.fromkeys(_CONSUME + _POLL))
        grants.append(
            _statement(
                "SubscribersConsumeQueue",
                _principals(queue.partition, others),
                consume,
                queue.value,
            )
        )
    return grants

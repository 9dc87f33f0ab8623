"""The lifecycle rule and access policies: the documents, and the commands that print them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from offload_core.errors import ConfigurationError
from offload_transports import policies

OFFLOAD = str(Path(sys.executable).with_name("offload"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OFFLOAD, *args], capture_output=True, text=True, timeout=60)


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("offload: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("url", "prefix", "expected"),
    [
        ("s3://payloads", "", ""),
        ("s3://payloads/", "", ""),
        ("s3://payloads/orders", "", "orders/"),
        ("s3://payloads/orders/", "2026", "orders/2026/"),
        ("s3://payloads", "/big/", "big/"),
    ],
)
def test_lifecycle_rule(url: str, prefix: str, expected: str) -> None:
    (rule,) = policies.lifecycle_configuration(url, 7, prefix)["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Filter"] == {"Prefix": expected}
    assert rule["Expiration"] == {"Days": 7}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


@pytest.mark.parametrize(
    ("url", "days", "problem"),
    [
        ("file:///srv/payloads", 7, "offload gc"),
        ("s3://Not_A_Bucket/x", 7, "not a valid S3 bucket name"),
        ("s3://arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/x", 7, "access point"),
        ("s3://payloads", 0, "at least 1"),
    ],
)
def test_lifecycle_refuses(url: str, days: int, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        policies.lifecycle_configuration(url, days)


PUB, SUB_B, SUB_C = "111122223333", "444455556666", "777788889999"
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TOPIC = "arn:aws:sns:us-east-1:111122223333:orders"
QUEUE = "arn:aws:sqs:eu-west-1:444455556666:orders"
BUS = "arn:aws:events:us-east-1:111122223333:event-bus/orders"
MRAP = "arn:aws:s3::111122223333:accesspoint/mfzwi23gnjvgw.mrap"
OBJECTS = "arn:aws:s3:::payloads/orders/*"


def _by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert document["Version"] == "2012-10-17"
    return {s["Sid"]: s for s in document["Statement"]}


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def _grants(document: dict[str, Any]) -> dict[str, set[str]]:
    """Resource -> actions an identity policy allows on it."""
    out: dict[str, set[str]] = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "Principal" not in statement
        out.setdefault(statement["Resource"], set()).update(_actions(statement))
    return out


def test_policies_grant_least_privilege() -> None:
    docs = policies.access_policies(
        publisher=PUB,
        subscribers=[SUB_B, SUB_C, SUB_B],
        bucket="payloads",
        prefix="orders",
        kms_key=KEY,
        topic=TOPIC,
        queue=QUEUE,
    )
    subs = {"AWS": [f"arn:aws:iam::{SUB_B}:root", f"arn:aws:iam::{SUB_C}:root"]}
    pub = {"AWS": f"arn:aws:iam::{PUB}:root"}

    bucket = _by_sid(docs["bucket_policy"])
    deny = bucket["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == ["arn:aws:s3:::payloads", "arn:aws:s3:::payloads/*"]
    assert bucket["SubscribersReadPayloads"]["Principal"] == subs
    assert bucket["SubscribersReadPayloads"]["Action"] == "s3:GetObject"
    assert bucket["SubscribersReadPayloads"]["Resource"] == OBJECTS
    assert bucket["PublisherWritesPayloads"]["Principal"] == pub
    assert bucket["PublisherWritesPayloads"]["Action"] == [
        "s3:PutObject",
        "s3:AbortMultipartUpload",
    ]
    assert bucket["PublisherWritesPayloads"]["Resource"] == OBJECTS
    # The publisher removes a payload whose send failed.
    assert bucket["PublisherDeletesUnsentPayloads"]["Action"] == "s3:DeleteObject"
    assert bucket["PublisherDeletesUnsentPayloads"]["Principal"] == pub
    assert "DeletingSubscribersDeletePayloads" not in bucket

    kms = {s["Sid"]: s for s in docs["kms_key_policy_statements"]}
    via = {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    assert kms["SubscribersDecryptPayloads"]["Action"] == "kms:Decrypt"
    assert kms["SubscribersDecryptPayloads"]["Principal"] == subs
    assert kms["SubscribersDecryptPayloads"]["Condition"] == via
    # A data key per object, and Decrypt to complete multipart uploads; S3 never calls Encrypt.
    assert kms["PublisherEncryptsPayloads"]["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert kms["PublisherEncryptsPayloads"]["Principal"] == pub

    topic = _by_sid(docs["topic_policy"])
    assert topic["PublisherPublishes"]["Action"] == ["sns:Publish", "sns:GetTopicAttributes"]
    assert topic["PublisherPublishes"]["Principal"] == pub
    assert topic["SubscribersSubscribe"]["Action"] == "sns:Subscribe"
    assert topic["SubscribersSubscribe"]["Resource"] == TOPIC

    queue = _by_sid(docs["queue_policy"])
    send = queue["TopicSendsPointers"]
    assert send["Principal"] == {"Service": "sns.amazonaws.com"}
    assert send["Action"] == "sqs:SendMessage"
    assert send["Resource"] == QUEUE
    assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": TOPIC}}
    # C's consumers read B's queue, so the queue lets C's account in; B's own need no grant.
    consume = queue["SubscribersConsumeQueue"]
    assert consume["Principal"] == {"AWS": f"arn:aws:iam::{SUB_C}:root"}
    assert _actions(consume) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    }
    assert "PublisherSendsPointers" not in queue  # the topic feeds the queue

    assert _grants(docs["publisher_identity_policy"]) == {
        OBJECTS: {"s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"},
        KEY: {"kms:GenerateDataKey", "kms:Decrypt"},
        TOPIC: {"sns:Publish", "sns:GetTopicAttributes"},
    }
    subscriber = _by_sid(docs["subscriber_identity_policy"])
    assert subscriber["ReadPayloads"] == {
        "Sid": "ReadPayloads",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": OBJECTS,
    }
    assert subscriber["DecryptPayloads"]["Condition"] == via
    assert _grants(docs["subscriber_identity_policy"]) == {
        OBJECTS: {"s3:GetObject"},
        KEY: {"kms:Decrypt"},
        QUEUE: {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"},
    }
    # The event source mapping polls with the function's role.
    assert _grants(docs["lambda_execution_policy"]) == {
        OBJECTS: {"s3:GetObject"},
        KEY: {"kms:Decrypt"},
        QUEUE: {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    }
    assert "deleting_subscriber_identity_policy" not in docs


def test_a_deleting_subscriber_may_delete_what_it_acknowledged() -> None:
    docs = policies.access_policies(
        publisher=PUB,
        subscribers=[SUB_B],
        deleting_subscribers=[SUB_C],
        bucket="payloads",
        prefix="orders",
        queue=QUEUE,
    )
    delete = _by_sid(docs["bucket_policy"])["DeletingSubscribersDeletePayloads"]
    assert delete["Principal"] == {"AWS": f"arn:aws:iam::{SUB_C}:root"}
    assert delete["Action"] == "s3:DeleteObject"
    assert delete["Resource"] == OBJECTS
    readers = _by_sid(docs["bucket_policy"])["SubscribersReadPayloads"]["Principal"]["AWS"]
    assert readers == [f"arn:aws:iam::{SUB_B}:root", f"arn:aws:iam::{SUB_C}:root"]
    consumer = _grants(docs["subscriber_identity_policy"])
    deleting = _grants(docs["deleting_subscriber_identity_policy"])
    assert deleting == {**consumer, OBJECTS: {"s3:GetObject", "s3:DeleteObject"}}


def test_a_publisher_sending_to_the_queue_itself_may_read_its_limit() -> None:
    docs = policies.access_policies(
        publisher=PUB, subscribers=[SUB_B], bucket="payloads", prefix="orders", queue=QUEUE
    )
    (send,) = docs["queue_policy"]["Statement"]  # B reads its own queue: no grant for it
    assert send["Sid"] == "PublisherSendsPointers"
    assert send["Principal"] == {"AWS": f"arn:aws:iam::{PUB}:root"}
    assert send["Action"] == ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    assert _grants(docs["publisher_identity_policy"])[QUEUE] == {
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
    }


@pytest.mark.parametrize(
    ("bus", "rules"),
    [
        (BUS, "arn:aws:events:us-east-1:111122223333:rule/orders/*"),
        (
            "arn:aws:events:us-east-1:111122223333:event-bus/default",
            "arn:aws:events:us-east-1:111122223333:rule/*",
        ),
    ],
)
def test_an_event_bus_takes_the_publishers_events_and_its_rules_feed_the_queue(
    bus: str, rules: str
) -> None:
    docs = policies.access_policies(
        publisher=PUB, subscribers=[SUB_B], bucket="payloads", event_bus=bus, queue=QUEUE
    )
    (put,) = docs["event_bus_policy"]["Statement"]
    assert put["Principal"] == {"AWS": f"arn:aws:iam::{PUB}:root"}
    assert put["Action"] == "events:PutEvents"
    assert put["Resource"] == bus
    (target,) = docs["queue_policy"]["Statement"]
    assert target["Principal"] == {"Service": "events.amazonaws.com"}
    assert target["Action"] == "sqs:SendMessage"
    assert target["Condition"] == {"ArnLike": {"aws:SourceArn": rules}}
    assert _grants(docs["publisher_identity_policy"])[bus] == {"events:PutEvents"}
    assert QUEUE not in _grants(docs["publisher_identity_policy"])


def test_payloads_through_a_multi_region_access_point() -> None:
    key = "arn:aws:kms:us-east-1:111122223333:key/mrk-" + "a" * 32
    docs = policies.access_policies(
        publisher=PUB,
        subscribers=[SUB_B],
        deleting_subscribers=[SUB_C],
        bucket="payloads-use1",
        prefix="orders",
        mrap=MRAP,
        kms_key=key,
        region="eu-west-1",  # a bucket in another region than the key's: fine behind an MRAP
    )
    objects = f"{MRAP}/object/orders/*"
    mrap = _by_sid(docs["mrap_policy"])
    assert set(mrap) == {
        "PublisherWritesPayloads",
        "PublisherDeletesUnsentPayloads",
        "SubscribersReadPayloads",
        "DeletingSubscribersDeletePayloads",
    }
    assert {s["Resource"] for s in mrap.values()} == {objects}
    # Each bucket behind it grants the same, to requests through the MRAP's account only.
    bucket = _by_sid(docs["bucket_policy"])
    through = {"StringEquals": {"s3:DataAccessPointAccount": PUB}}
    read = bucket["SubscribersReadPayloads"]
    assert read["Resource"] == "arn:aws:s3:::payloads-use1/orders/*"
    assert read["Condition"] == through
    assert bucket["PublisherWritesPayloads"]["Condition"] == through
    assert "Condition" in bucket["DenyInsecureTransport"]
    replicas = "arn:aws:kms:*:111122223333:key/mrk-" + "a" * 32
    assert _grants(docs["publisher_identity_policy"]) == {
        objects: {"s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"},
        replicas: {"kms:GenerateDataKey", "kms:Decrypt"},
    }
    assert _grants(docs["subscriber_identity_policy"]) == {
        objects: {"s3:GetObject"},
        replicas: {"kms:Decrypt"},
    }
    assert _grants(docs["deleting_subscriber_identity_policy"])[objects] == {
        "s3:GetObject",
        "s3:DeleteObject",
    }
    via = {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
    assert all(s["Condition"] == via for s in docs["kms_key_policy_statements"])


def test_policies_leave_out_documents_for_resources_not_named() -> None:
    docs = policies.access_policies(publisher=PUB, subscribers=[SUB_B], bucket="payloads")
    assert set(docs) == {
        "bucket_policy",
        "publisher_identity_policy",
        "subscriber_identity_policy",
        "lambda_execution_policy",
    }
    reader = _by_sid(docs["bucket_policy"])["SubscribersReadPayloads"]
    assert reader["Principal"] == {"AWS": f"arn:aws:iam::{SUB_B}:root"}
    assert reader["Resource"] == "arn:aws:s3:::payloads/*"
    assert docs["lambda_execution_policy"] == docs["subscriber_identity_policy"]


def test_policies_follow_the_partition_and_region() -> None:
    key = "arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-" + "0" * 32
    docs = policies.access_policies(
        publisher=PUB, subscribers=[SUB_B], bucket="payloads", kms_key=key
    )
    (_encrypt, decrypt) = docs["kms_key_policy_statements"]
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == (
        "s3.cn-north-1.amazonaws.com.cn"
    )
    assert decrypt["Principal"] == {"AWS": f"arn:aws-cn:iam::{SUB_B}:root"}
    assert _by_sid(docs["bucket_policy"])["SubscribersReadPayloads"]["Resource"] == (
        "arn:aws-cn:s3:::payloads/*"
    )


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"publisher": "1111"}, "publisher account must be a 12-digit"),
        ({"subscribers": ["12345678901a"]}, "subscriber account must be a 12-digit"),
        ({"deleting_subscribers": ["1"]}, "deleting subscriber account must be a 12-digit"),
        ({"subscribers": []}, "at least one subscriber"),
        ({"bucket": "Bad_Bucket"}, "not a valid S3 bucket name"),
        ({"bucket": MRAP}, "name the bucket"),
        ({"kms_key": "arn:aws:kms:us-east-1:111122223333:alias/payloads"}, "not an alias"),
        ({"topic": "arn:aws:sqs:us-east-1:111122223333:orders"}, "SNS topic|sns"),
        ({"topic": "orders"}, "ARN like"),
        ({"event_bus": "orders"}, "event bus must be an ARN"),
        ({"event_bus": "arn:aws:events:us-east-1:111122223333:rule/orders"}, "event-bus/"),
        ({"mrap": "arn:aws:s3:us-east-1:111122223333:accesspoint/ap"}, "Multi-Region"),
        ({"kms_key": KEY, "region": "eu-west-1"}, "bucket's region"),
        ({"region": "Europe"}, "region name"),
        (
            {"topic": TOPIC, "queue": "arn:aws-cn:sqs:cn-north-1:444455556666:orders"},
            "different partitions",
        ),
        ({"mrap": "arn:aws-cn:s3::111122223333:accesspoint/x.mrap", "topic": TOPIC}, "partitions"),
    ],
)
def test_policies_refuse_bad_input(changes: dict[str, Any], problem: str) -> None:
    args: dict[str, Any] = {"publisher": PUB, "subscribers": [SUB_B], "bucket": "payloads"}
    with pytest.raises(ConfigurationError, match=problem):
        policies.access_policies(**{**args, **changes})


def test_lifecycle_prints_a_configuration() -> None:
    out = run("lifecycle", "s3://payloads/orders", "--days", "7", "--json")
    assert out.returncode == 0, out.stderr
    (rule,) = json.loads(out.stdout)["Rules"]
    assert rule["Filter"] == {"Prefix": "orders/"}
    assert rule["Expiration"] == {"Days": 7}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    hinted = run("lifecycle", "s3://payloads", "--days", "3")
    assert "put-bucket-lifecycle-configuration --bucket payloads" in hinted.stderr
    assert run("lifecycle", "file:///srv/p", "--days", "3").returncode == 2


def test_policy_prints_every_document() -> None:
    out = run(
        "policy",
        "--publisher", "111122223333",
        "--subscriber", "444455556666",
        "--deleting-subscriber", "777788889999",
        "--bucket", "payloads",
        "--prefix", "orders",
        "--kms-key", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "--topic", "arn:aws:sns:us-east-1:111122223333:orders",
        "--event-bus", "arn:aws:events:us-east-1:111122223333:event-bus/orders",
        "--queue", "arn:aws:sqs:eu-west-1:444455556666:orders",
        "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    docs = json.loads(out.stdout)
    assert set(docs) == {
        "bucket_policy",
        "kms_key_policy_statements",
        "topic_policy",
        "queue_policy",
        "event_bus_policy",
        "publisher_identity_policy",
        "subscriber_identity_policy",
        "deleting_subscriber_identity_policy",
        "lambda_execution_policy",
    }
    readers = [s for s in docs["bucket_policy"]["Statement"] if s["Action"] == "s3:GetObject"]
    assert readers == [
        {
            "Sid": "SubscribersReadPayloads",
            "Effect": "Allow",
            "Principal": {
                "AWS": ["arn:aws:iam::444455556666:root", "arn:aws:iam::777788889999:root"]
            },
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::payloads/orders/*",
        }
    ]
    queue = _by_sid(docs["queue_policy"])
    assert set(queue) == {"TopicSendsPointers", "RulesSendEvents", "SubscribersConsumeQueue"}
    assert queue["TopicSendsPointers"]["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(
        ":orders"
    )


def test_policy_prints_the_mrap_policy_and_how_to_apply_each_document() -> None:
    out = run(
        "policy",
        "--publisher", "111122223333",
        "--deleting-subscriber", "444455556666",
        "--bucket", "payloads-use1",
        "--mrap", MRAP,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert set(json.loads(out.stdout)) >= {"mrap_policy", "deleting_subscriber_identity_policy"}
    assert "put-multi-region-access-point-policy" in out.stderr
    assert "AWSLambdaBasicExecutionRole" in out.stderr


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--publisher", "12345", "--subscriber", "444455556666"), "12-digit"),
        (("--publisher", "111122223333"), "at least one subscriber"),
    ],
)
def test_policy_rejects_bad_input_in_one_line(args: tuple[str, ...], problem: str) -> None:
    out = run("policy", *args, "--bucket", "b1")
    assert out.returncode == 2
    assert problem in one_line_error(out)

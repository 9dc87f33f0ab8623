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


def _by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert document["Version"] == "2012-10-17"
    return {s["Sid"]: s for s in document["Statement"]}


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
    objects = "arn:aws:s3:::payloads/orders/*"
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
    assert bucket["SubscribersReadPayloads"]["Resource"] == objects
    assert bucket["PublisherWritesPayloads"]["Principal"] == pub
    assert bucket["PublisherWritesPayloads"]["Action"] == [
        "s3:PutObject",
        "s3:AbortMultipartUpload",
    ]
    assert bucket["PublisherWritesPayloads"]["Resource"] == objects

    kms = {s["Sid"]: s for s in docs["kms_key_policy_statements"]}
    via = {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    assert kms["SubscribersDecryptPayloads"]["Action"] == "kms:Decrypt"
    assert kms["SubscribersDecryptPayloads"]["Principal"] == subs
    assert kms["SubscribersDecryptPayloads"]["Condition"] == via
    assert {"kms:GenerateDataKey", "kms:Encrypt"} <= set(kms["PublisherEncryptsPayloads"]["Action"])
    assert kms["PublisherEncryptsPayloads"]["Principal"] == pub

    topic = _by_sid(docs["topic_policy"])
    assert topic["PublisherPublishes"]["Action"] == "sns:Publish"
    assert topic["PublisherPublishes"]["Principal"] == pub
    assert topic["SubscribersSubscribe"]["Action"] == "sns:Subscribe"
    assert topic["SubscribersSubscribe"]["Resource"] == TOPIC

    (send,) = docs["queue_policy"]["Statement"]
    assert send["Principal"] == {"Service": "sns.amazonaws.com"}
    assert send["Action"] == "sqs:SendMessage"
    assert send["Resource"] == QUEUE
    assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": TOPIC}}

    publisher = _by_sid(docs["publisher_identity_policy"])
    assert set(publisher) == {"WritePayloads", "EncryptPayloads", "PublishPointers"}
    assert all("Principal" not in s for s in publisher.values())
    assert publisher["EncryptPayloads"]["Resource"] == KEY
    subscriber = _by_sid(docs["subscriber_identity_policy"])
    assert subscriber["ReadPayloads"] == {
        "Sid": "ReadPayloads",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": objects,
    }
    assert subscriber["ConsumeQueue"]["Resource"] == QUEUE
    assert "sqs:ReceiveMessage" in subscriber["ConsumeQueue"]["Action"]
    assert subscriber["DecryptPayloads"]["Action"] == "kms:Decrypt"


def test_policies_leave_out_documents_for_resources_not_named() -> None:
    docs = policies.access_policies(publisher=PUB, subscribers=[SUB_B], bucket="payloads")
    assert set(docs) == {"bucket_policy", "publisher_identity_policy", "subscriber_identity_policy"}
    reader = _by_sid(docs["bucket_policy"])["SubscribersReadPayloads"]
    assert reader["Principal"] == {"AWS": f"arn:aws:iam::{SUB_B}:root"}
    assert reader["Resource"] == "arn:aws:s3:::payloads/*"


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
        ({"subscribers": []}, "at least one subscriber"),
        ({"bucket": "Bad_Bucket"}, "not a valid S3 bucket name"),
        ({"kms_key": "arn:aws:kms:us-east-1:111122223333:alias/payloads"}, "not an alias"),
        ({"topic": "arn:aws:sqs:us-east-1:111122223333:orders"}, "SNS topic|sns"),
        ({"topic": "orders"}, "ARN like"),
        ({"queue": QUEUE}, "pass --topic"),
        ({"kms_key": KEY, "region": "eu-west-1"}, "bucket's region"),
        ({"region": "Europe"}, "region name"),
        (
            {"topic": TOPIC, "queue": "arn:aws-cn:sqs:cn-north-1:444455556666:orders"},
            "different partitions",
        ),
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
        "--subscriber", "777788889999",
        "--bucket", "payloads",
        "--prefix", "orders",
        "--kms-key", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "--topic", "arn:aws:sns:us-east-1:111122223333:orders",
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
        "publisher_identity_policy",
        "subscriber_identity_policy",
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
    (send,) = docs["queue_policy"]["Statement"]
    assert send["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(":orders")


def test_policy_rejects_a_bad_account_in_one_line() -> None:
    out = run("policy", "--publisher", "12345", "--subscriber", "444455556666", "--bucket", "b1")
    assert out.returncode == 2
    assert "12-digit" in one_line_error(out)

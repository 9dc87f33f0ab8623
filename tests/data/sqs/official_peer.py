"""Runs the official AWS extended clients (from PyPI) as a peer in its own process.

Importing ``sqs_extended_client`` or ``sns_extended_client`` replaces ``boto3.Session`` for the
whole process, so the tests run this script instead of importing them. It reads a JSON list of
steps on stdin, runs them in order and prints a JSON list of results. The endpoint, region and
credentials come from the environment (``AWS_ENDPOINT_URL`` reaches both SQS and S3).

Steps (one library per run: ``"sqs"`` steps or ``"sns"`` steps)::

    {"op": "send", "queue": url, "body": str, "attributes": {...}, "bucket": b,
     "always": bool, "legacy": bool}
    {"op": "receive", "queue": url, "count": n}      -> [{"Body", "ReceiptHandle",
                                                         "MessageAttributes"}, ...]
    {"op": "delete", "queue": url, "handle": h, "bucket": b, "delete_payload": bool}
    {"op": "publish", "topic": arn, "message": str, "attributes": {...}, "bucket": b,
     "always": bool}
"""

import json
import sys


def sqs_client(step):
    import boto3
    import sqs_extended_client  # noqa: F401  (patches boto3.Session)

    sqs = boto3.client("sqs")
    if step.get("bucket"):
        sqs.large_payload_support = step["bucket"]
    sqs.always_through_s3 = bool(step.get("always", False))
    sqs.use_legacy_attribute = bool(step.get("legacy", False))
    sqs.delete_payload_from_s3 = bool(step.get("delete_payload", False))
    return sqs


def sns_client(step):
    import boto3
    import sns_extended_client  # noqa: F401  (patches boto3.Session)

    sns = boto3.client("sns")
    sns.large_payload_support = step["bucket"]
    sns.always_through_s3 = bool(step.get("always", False))
    return sns


def run(step):
    op = step["op"]
    if op == "send":
        response = sqs_client(step).send_message(
            QueueUrl=step["queue"],
            MessageBody=step["body"],
            MessageAttributes=step.get("attributes", {}),
        )
        return response["MessageId"]
    if op == "receive":
        got = []
        sqs = sqs_client(step)
        while len(got) < step["count"]:
            response = sqs.receive_message(
                QueueUrl=step["queue"],
                MaxNumberOfMessages=min(10, step["count"] - len(got)),
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            got += [
                {
                    "Body": m["Body"],
                    "ReceiptHandle": m["ReceiptHandle"],
                    "MessageAttributes": m.get("MessageAttributes", {}),
                }
                for m in messages
            ]
        return got
    if op == "delete":
        response = sqs_client(step).delete_message(
            QueueUrl=step["queue"], ReceiptHandle=step["handle"]
        )
        return response["ResponseMetadata"]["HTTPStatusCode"]
    if op == "publish":
        response = sns_client(step).publish(
            TopicArn=step["topic"],
            Message=step["message"],
            MessageAttributes=step.get("attributes", {}),
        )
        return response["MessageId"]
    raise ValueError(f"unknown step {op!r}")


if __name__ == "__main__":
    print(json.dumps([run(step) for step in json.load(sys.stdin)]))

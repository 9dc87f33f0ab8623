"""Commands the built-in transports add to the ``offload`` command line."""

from __future__ import annotations

import sys

import click

from offload_core.cli import json_option, print_json, progress_bar

from .policies import access_policies, lifecycle_configuration


@click.command()
@click.option(
    "--size",
    "size_mib",
    type=click.IntRange(1, 2048),
    default=200,
    show_default=True,
    help="Size of the largest payloads, in MiB (up to 2048: 2 GiB).",
)
@click.option(
    "--local",
    is_flag=True,
    help="Use a local directory and a 256 KiB limit instead of the embedded AWS (needs no moto).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def demo(size_mib: int, local: bool, as_json: bool) -> None:
    """Run the seed architecture on an embedded AWS (moto on 127.0.0.1).

    Application A (account A) publishes JSON and binary payloads through SNS and EventBridge;
    B (account B, queues in two regions) and C (a Lambda function in account C) resolve and
    verify them. Prints the accounts, resources and policies, a row per message and the checks;
    the exit status is 1 if any message or check failed.
    """
    from .demo import run_demo, run_local

    run = run_local if local else run_demo
    report = run(size_mib * 2**20, progress=progress_bar, echo=None if as_json else click.echo)
    if as_json:
        print_json(report.to_json())
    if not report.ok:
        sys.exit(1)


@click.command()
@click.argument("store", metavar="STORE")
@click.option("--days", required=True, type=click.IntRange(1), help="Expire payloads after N days.")
@click.option("--prefix", default="", help="Key prefix under the store's root.")
@json_option
def lifecycle(store: str, days: int, prefix: str, as_json: bool) -> None:
    """Print (never apply) the S3 lifecycle configuration for an s3:// STORE."""
    config = lifecycle_configuration(store, days, prefix)
    print_json(config)
    if not as_json:
        bucket = store.removeprefix("s3://").split("/", 1)[0]
        click.echo(
            f"# apply: aws s3api put-bucket-lifecycle-configuration --bucket {bucket} "
            "--lifecycle-configuration file://lifecycle.json\n"
            "# this replaces the bucket's existing rules: merge them in first "
            "(aws s3api get-bucket-lifecycle-configuration)",
            err=True,
        )


@click.command()
@click.option("--publisher", required=True, metavar="ACCOUNT", help="Publisher account id.")
@click.option(
    "--subscriber",
    "subscribers",
    multiple=True,
    metavar="ACCOUNT",
    help="Subscriber account id (repeatable).",
)
@click.option(
    "--deleting-subscriber",
    "deleting_subscribers",
    multiple=True,
    metavar="ACCOUNT",
    help="Subscriber account whose consumers delete payloads on acknowledgement (repeatable).",
)
@click.option(
    "--bucket",
    required=True,
    help="Bucket holding the payloads (with --mrap: a bucket behind it, one run per bucket).",
)
@click.option("--prefix", default="", help="Key prefix of the payloads in the bucket.")
@click.option("--mrap", metavar="ARN", help="Multi-Region Access Point the stores go through.")
@click.option("--kms-key", metavar="ARN", help="KMS key encrypting the bucket (key ARN).")
@click.option("--topic", metavar="ARN", help="SNS topic the publisher sends pointers to.")
@click.option("--event-bus", metavar="ARN", help="EventBridge bus the publisher puts events on.")
@click.option(
    "--queue",
    metavar="ARN",
    help="SQS queue consumers read: fed by the topic, by rules on the bus, or else by the "
    "publisher directly.",
)
@click.option("--region", help="The bucket's region (default: the KMS key's).")
@json_option
def policy(
    publisher: str,
    subscribers: tuple[str, ...],
    deleting_subscribers: tuple[str, ...],
    bucket: str,
    prefix: str,
    mrap: str | None,
    kms_key: str | None,
    topic: str | None,
    event_bus: str | None,
    queue: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """Print (never apply) least-privilege policies for a publisher and its subscribers.

    One JSON object keyed by document. Resource policies: bucket_policy, mrap_policy,
    kms_key_policy_statements, topic_policy, queue_policy, event_bus_policy. Identity policies,
    one per role: publisher_identity_policy, subscriber_identity_policy (a consumer),
    deleting_subscriber_identity_policy, lambda_execution_policy (a consuming function's role).
    """
    docs = access_policies(
        publisher=publisher,
        subscribers=subscribers,
        deleting_subscribers=deleting_subscribers,
        bucket=bucket,
        prefix=prefix,
        mrap=mrap,
        kms_key=kms_key,
        topic=topic,
        event_bus=event_bus,
        queue=queue,
        region=region,
    )
    print_json(docs)
    if not as_json:
        click.echo(
            "# each document replaces the resource's policy: merge with what is there.\n"
            "# bucket_policy: aws s3api put-bucket-policy --bucket B --policy file://...\n"
            "# mrap_policy: aws s3control put-multi-region-access-point-policy --account-id A "
            "--details Name=<MRAP name>,Policy=...\n"
            "# kms_key_policy_statements: add to the key policy (aws kms put-key-policy)\n"
            "# topic_policy: aws sns set-topic-attributes --attribute-name Policy ...\n"
            "# queue_policy: aws sqs set-queue-attributes --attributes Policy=...\n"
            "# event_bus_policy: aws events put-permission --event-bus-name BUS --policy ...\n"
            "# *_identity_policy: aws iam put-role-policy on the roles in each account\n"
            "# lambda_execution_policy: put-role-policy on the function's role (logs: attach "
            "AWSLambdaBasicExecutionRole)",
            err=True,
        )

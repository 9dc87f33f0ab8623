"""The demo's embedded AWS: a moto server on 127.0.0.1, and what the seed architecture needs
that moto does not do by itself (delivery to subscriptions made from other accounts, and the
event a Lambda function would be called with)."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any

from offload_core.errors import MissingDependencyError
from offload_core.testing.aws import MotoServer

__all__ = ["embedded_server", "lambda_sns_event", "link_subscriptions", "moto_version"]


def moto_version() -> str:
    return version("moto")


@contextmanager
def embedded_server(server: MotoServer | None = None) -> Iterator[MotoServer]:
    """``server``, or a new moto server on 127.0.0.1 and a free port that stops on exit; its
    request log is quiet meanwhile."""
    for module, extra in (("moto", "demo"), ("flask", "demo"), ("boto3", "s3")):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(
                "offload demo ('offload demo --local' runs without it)", module=module, extra=extra
            )
    log = logging.getLogger("werkzeug")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        if server is not None:
            yield server
        else:
            with MotoServer() as started:
                yield started
    finally:
        log.setLevel(level)


def link_subscriptions(topic_arn: str, accounts: Iterable[str]) -> list[str]:
    """Make the topic deliver to its subscriptions made from ``accounts``; the ARNs linked.

    moto keeps a subscription in the account that made it, and a topic publishes only to the
    subscriptions of its own account, so a queue owner's subscription to another account's topic
    (the way AWS recommends, needing no confirmation) never receives anything. This adds those
    subscriptions to the topic's account in the embedded server, as AWS itself keeps them.
    Needs the server to run in this process (moto's internals)."""
    from moto.sns.models import sns_backends

    parts = topic_arn.split(":")
    region, owner = parts[3], parts[4]
    topic_backend: Any = sns_backends[owner][region]
    linked: list[str] = []
    for account in accounts:
        theirs: Mapping[str, Any] = sns_backends[account][region].subscriptions
        for arn, subscription in list(theirs.items()):
            if subscription.topic.arn == topic_arn and arn not in topic_backend.subscriptions:
                topic_backend.subscriptions[arn] = subscription
                linked.append(arn)
    return linked


def lambda_sns_event(envelope: Mapping[str, Any], subscription_arn: str) -> dict[str, Any]:
    """The event Lambda calls a function subscribed to a topic with, for one notification (the
    envelope an SQS subscription without raw delivery receives; Lambda spells two keys its way)."""
    renamed = {"SigningCertURL": "SigningCertUrl", "UnsubscribeURL": "UnsubscribeUrl"}
    sns = {renamed.get(k, k): v for k, v in envelope.items()}
    sns.setdefault("Subject", None)
    sns.setdefault("MessageAttributes", {})
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": sns,
            }
        ]
    }

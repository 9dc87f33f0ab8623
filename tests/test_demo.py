"""``offload demo``: the seed architecture on moto, in process (small payloads) and as a user runs
the installed script; and the local round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from offload_core.testing.aws import MotoServer
from offload_transports.demo import ACCOUNTS, FAR, HOME, Report, run_demo, run_local
from offload_transports.demo._payloads import MiB, Payload
from offload_transports.demo._report import Expected, Resolution, Row, Table

OFFLOAD = str(Path(sys.executable).with_name("offload"))
TOPIC_CONSUMERS = [f"B {HOME}", f"B {FAR}", "C Lambda"]


@pytest.fixture(scope="module")
def seed(moto_server: MotoServer) -> tuple[Report, list[str]]:
    """One run of the seed architecture with 3 MiB payloads, and the text it printed."""
    lines: list[str] = []
    return run_demo(3 * MiB, server=moto_server, echo=lines.append), lines


def _rows(report: Report) -> dict[tuple[str, str], Row]:
    return {(row.name, row.via): row for row in report.rows}


def _as(moto: MotoServer, label: str, service: str, region: str = HOME) -> Any:
    return moto.client(service, region=region, **moto.assume_role(ACCOUNTS[label]))


def test_every_message_is_verified_by_every_subscriber(seed: tuple[Report, list[str]]) -> None:
    report, _ = seed
    assert report.ok, [line for row in report.rows for line in Table.problems(row)]
    rows = _rows(report)
    assert set(rows) == {
        ("JSON 4 KiB", "SNS"),
        ("binary 4 KiB", "SNS"),
        ("JSON 3 MiB", "SNS"),
        ("binary 3 MiB", "SNS"),
        ("JSON 4 KiB", "EventBridge"),
        ("JSON 3 MiB", "EventBridge"),
        ("forged pointer", "SNS"),
    }
    for (name, via), row in rows.items():
        wanted = TOPIC_CONSUMERS if via == "SNS" else ["C Lambda"]
        assert [r.consumer for r in row.resolutions] == wanted, name
        assert all(r.ok for r in row.resolutions), (name, via, row.resolutions)


def test_the_right_messages_are_offloaded_in_the_right_format(
    seed: tuple[Report, list[str]],
) -> None:
    rows = _rows(seed[0])
    sent = {key: (r.offloaded, r.pointer_format, r.codec) for key, r in rows.items()}
    assert sent == {
        ("JSON 4 KiB", "SNS"): (False, "-", "-"),
        ("binary 4 KiB", "SNS"): (True, "native", "none"),  # bodies are text: never inline
        ("JSON 3 MiB", "SNS"): (True, "aws", "none"),  # readable by the AWS extended clients
        ("binary 3 MiB", "SNS"): (True, "native", "none"),
        ("JSON 4 KiB", "EventBridge"): (False, "-", "-"),
        ("JSON 3 MiB", "EventBridge"): (True, "native", "zstd"),
        ("forged pointer", "SNS"): (True, "aws", "-"),
    }
    compressed = rows[("JSON 3 MiB", "EventBridge")]
    assert compressed.size is not None
    assert compressed.stored_size is not None
    assert compressed.stored_size < compressed.size / 3
    assert rows[("binary 3 MiB", "SNS")].stored_size == 3 * MiB
    assert rows[("forged pointer", "SNS")].refusal


def test_no_subscriber_deletes_a_payload(
    seed: tuple[Report, list[str]], moto_server: MotoServer
) -> None:
    report, _ = seed
    (bucket,) = [r for r in report.resources if r.kind == "bucket"]
    listed = _as(moto_server, "A", "s3").list_objects_v2(Bucket=bucket.short_name)
    stored = [o for o in listed.get("Contents", []) if o["Key"].startswith("payloads/")]
    assert len(stored) == sum(1 for r in report.rows if r.offloaded and not r.refusal) == 4
    (kept,) = [c for c in report.checks if c.name == "payloads kept"]
    assert kept.ok


def test_accounts_and_regions_are_what_moto_reports(
    seed: tuple[Report, list[str]], moto_server: MotoServer
) -> None:
    report, _ = seed
    assert {a.label: a.account_id for a in report.accounts} == ACCOUNTS
    assert len(set(ACCOUNTS.values())) == 3
    by_kind: dict[str, list[Any]] = {}
    for resource in report.resources:
        by_kind.setdefault(resource.kind, []).append(resource)
    (topic,) = by_kind["topic"]
    assert topic.placement == (HOME, ACCOUNTS["A"])
    b_queues = [q for q in by_kind["queue"] if q.account == "B"]
    assert sorted(q.placement for q in b_queues) == [(FAR, ACCOUNTS["B"]), (HOME, ACCOUNTS["B"])]
    for queue in b_queues:
        region, _ = queue.placement
        # The queue exists in B's account in that region, and not in A's.
        assert _as(moto_server, "B", "sqs", region).get_queue_url(QueueName=queue.short_name)
        with pytest.raises(ClientError, match=r"NonExistentQueue|QueueDoesNotExist"):
            _as(moto_server, "A", "sqs", region).get_queue_url(QueueName=queue.short_name)
    # A's topic delivers to queues of B (both regions) and C.
    subscriptions = _as(moto_server, "A", "sns").list_subscriptions_by_topic(TopicArn=topic.name)
    endpoints = sorted(s["Endpoint"].split(":")[3:5] for s in subscriptions["Subscriptions"])
    assert endpoints == [
        [FAR, ACCOUNTS["B"]],
        [HOME, ACCOUNTS["B"]],
        [HOME, ACCOUNTS["C"]],
    ]
    # The central bucket is A's, read by B and C from their own accounts.
    (bucket,) = by_kind["bucket"]
    for label, owns in (("A", True), ("B", False), ("C", False)):
        names = {b["Name"] for b in _as(moto_server, label, "s3").list_buckets()["Buckets"]}
        assert (bucket.short_name in names) is owns
    assert all(check.ok for check in report.checks), report.checks


def test_the_policies_that_grant_access_are_set_and_shown(seed: tuple[Report, list[str]]) -> None:
    report, lines = seed
    policies = {r.kind: r.policy for r in report.resources if r.policy}
    bucket_grants = {s["Sid"]: s for s in policies["bucket"]["Statement"]}
    readers = bucket_grants["SubscribersReadPayloads"]["Principal"]["AWS"]
    assert sorted(readers) == [f"arn:aws:iam::{ACCOUNTS[x]}:root" for x in "BC"]
    topic_grants = {s["Sid"] for s in policies["topic"]["Statement"]}
    assert topic_grants == {"PublisherPublishes", "SubscribersSubscribe"}
    text = "\n".join(lines)
    assert "SubscribersReadPayloads: Allow 222222222222, 333333333333: s3:GetObject" in text
    assert "does not evaluate them" in text  # says plainly what moto does not enforce
    assert "leaves out DenyInsecureTransport" in text


def test_the_text_report_has_a_row_per_message_and_a_verdict(
    seed: tuple[Report, list[str]],
) -> None:
    report, lines = seed
    header = next(i for i, line in enumerate(lines) if line.startswith("message "))
    assert lines[header].split() == [
        "message",
        "via",
        "bytes",
        "sent",
        "as",
        "stored",
        "codec",
        "format",
        "resolved",
        "by",
        "sha256",
        "time",
    ]
    table = lines[header + 1 : header + 1 + len(report.rows)]
    assert [line.split()[:2] for line in table][:2] == [["JSON", "4"], ["binary", "4"]]
    assert sum("verified" in line for line in table) == len(report.rows) - 1
    assert "refused by B us-east-1, B eu-west-1, C Lambda" in table[-1]
    assert lines[-1].startswith("ok: 7 messages and 5 checks")
    json.dumps(report.to_json())


def test_a_wrong_digest_or_a_followed_forged_pointer_fails() -> None:
    expected = Expected("JSON 1 MiB", 10, "ab" * 32)
    assert expected.judge("B", 0.1, 10, "ab" * 32).ok
    assert not expected.judge("B", 0.1, 10, "cd" * 32).ok
    assert not expected.judge("B", 0.1, 9, "ab" * 32).ok
    assert not expected.judge("B", 0.1, refused=True).ok
    forged = Expected("forged pointer")
    assert forged.judge("B", 0.0, refused=True).ok
    followed = forged.judge("B", 0.0, 16, "ef" * 32)
    assert not followed.ok
    assert followed.detail == "the forged pointer was followed"
    row = Row("forged pointer", "SNS", None, True, None, "-", "aws", (followed,), 0.0, True)
    report = Report("t", rows=[row])
    assert not report.ok
    table = Table([Payload("JSON", 4096)], ["SNS"], ["B"])
    assert "FAILED" in table.line(row)
    ok = Resolution("B", True, 0.0)
    assert Report("t", rows=[Row("x", "SNS", 1, False, None, "-", "-", (ok,), 0.0)]).ok


def test_local_mode_needs_no_aws(tmp_path: Path) -> None:
    report = run_local(3 * MiB, store_dir=tmp_path / "store")
    assert report.ok, [line for row in report.rows for line in Table.problems(row)]
    rows = {row.name: row for row in report.rows}
    assert not rows["JSON 4 KiB"].offloaded
    assert rows["JSON 3 MiB"].codec == "zstd"
    assert rows["binary 3 MiB"].codec == "none"  # random bytes: stored raw
    assert rows["forged pointer"].refusal
    assert len(list((tmp_path / "store").rglob("*"))) >= 3  # payloads stay after reading


def test_the_installed_script_runs_the_seed_architecture() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFLOAD_")}
    out = subprocess.run(
        [OFFLOAD, "demo", "--size", "8"], capture_output=True, text=True, env=env, timeout=180
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("offload demo: the seed architecture on moto")
    assert any(line.startswith("JSON 8 MiB      SNS") and "verified" in line for line in lines)
    assert any(line.startswith("binary 8 MiB    SNS") and "verified" in line for line in lines)
    assert lines[-1] == "ok: 10 messages and 5 checks, all as expected"
    assert out.stderr == ""

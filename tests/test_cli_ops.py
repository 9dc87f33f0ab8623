"""The operator commands as an operator runs them: the installed ``offload`` script, real files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sample_messages import EXPECTED, MESSAGES, sample_names

from offload_core.testing.aws import MotoServer

OFFLOAD = str(Path(sys.executable).with_name("offload"))
OPS_DATA = Path(__file__).parent / "data" / "ops"
PAYLOAD = b"".join(b'{"order": %d, "sku": "SKU-%05d"}\n' % (i, i % 977) for i in range(60_000))


@pytest.fixture
def env() -> dict[str, str]:
    """The environment without OFFLOAD_* settings that would change what gets loaded."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OFFLOAD_")}


def run(
    env: dict[str, str], *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OFFLOAD, *args], capture_output=True, text=True, env=env, input=stdin, cwd=cwd, timeout=60
    )


def run_bytes(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """``run``, with standard output kept as bytes (a payload)."""
    return subprocess.run([OFFLOAD, *args], capture_output=True, env=env, cwd=cwd, timeout=60)


def run_on_terminal(
    env: dict[str, str], *args: str, stdout_too: bool = False
) -> tuple[int, bytes, bytes]:
    """Run with stderr (and with ``stdout_too`` stdout) on a pseudo-terminal 100 columns wide:
    the exit status, what stdout got if it was a pipe, and what the terminal got."""
    termios = pytest.importorskip("termios", reason="needs a POSIX terminal")
    import fcntl
    import pty
    import struct

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    drawn: list[bytes] = []

    def drain() -> None:
        with suppress(OSError):  # EIO once the terminal side is closed
            while chunk := os.read(controller, 65536):
                drawn.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        out = subprocess.run(
            [OFFLOAD, *args],
            stdout=terminal if stdout_too else subprocess.PIPE,
            stderr=terminal,
            env=env,
            timeout=60,
        )
    finally:
        os.close(terminal)
        reader.join(timeout=10)
        os.close(controller)
    return out.returncode, out.stdout or b"", b"".join(drawn)


def one_json_error(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The error under --json, checked to be one JSON object on stderr and nothing on stdout."""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    error: dict[str, Any] = json.loads(lines[0])
    assert out.stdout == ""
    assert error["exit_status"] == out.returncode
    return error


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """The error, checked to be the one line on stderr."""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("offload: error: ")
    return lines[0]


def put(env: dict[str, str], tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """Store PAYLOAD in a local store; the store's URL and the message ``put --json`` printed."""
    source = tmp_path / "payload.json"
    source.write_bytes(PAYLOAD)
    store = (tmp_path / "store").as_uri()
    out = run(env, "put", str(source), "--store", store, "--json", *args)
    assert out.returncode == 0, out.stderr
    return store, json.loads(out.stdout)


def test_put_then_get_round_trips_with_zstd(env: dict[str, str], tmp_path: Path) -> None:
    store, message = put(env, tmp_path, "--compression", "zstd")
    assert message["pointer"]["codec"] == "zstd"
    assert message["pointer"]["stored_size"] < len(PAYLOAD)
    (tmp_path / "message.json").write_text(json.dumps(message))

    out = run(
        env, "get", f"@{tmp_path / 'message.json'}", "-o", str(tmp_path / "a"), "--store", store
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "a").read_bytes() == PAYLOAD
    assert "verified size and sha256 digest" in out.stdout
    assert out.stderr == ""  # no progress bar when stderr is not a terminal

    # The bare body from stdin works too: the native pointer needs no attributes.
    got = run(
        env,
        "get",
        "-",
        "-o",
        str(tmp_path / "b"),
        "--store",
        store,
        "--json",
        stdin=message["Body"],
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["checks"] == ["size", "sha256 digest"]
    assert (tmp_path / "b").read_bytes() == PAYLOAD


def test_put_on_a_terminal_prints_a_summary(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "payload.json"
    source.write_bytes(PAYLOAD)
    store = (tmp_path / "store").as_uri()
    code, _, shown = run_on_terminal(env, "put", str(source), "--store", store, stdout_too=True)
    assert code == 0, shown
    assert b'{"offload_pointer":1' in shown
    assert f"{len(PAYLOAD) / 2**20:.1f} MiB ({len(PAYLOAD):,} bytes)".encode() in shown


def test_put_output_redirected_is_the_message_get_reads_back(
    env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "payload.json"
    source.write_bytes(PAYLOAD)
    store = (tmp_path / "store").as_uri()
    out = run(env, "put", str(source), "--store", store)  # stdout is a pipe, no --json
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["pointer"]["size"] == len(PAYLOAD)
    (tmp_path / "ptr").write_text(out.stdout)

    got = run(env, "get", "@ptr", "-o", "out", "--store", store, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert "verified size and sha256 digest" in got.stdout
    assert (tmp_path / "out").read_bytes() == PAYLOAD


def test_get_refuses_what_is_neither_a_message_nor_a_pointer(
    env: dict[str, str], tmp_path: Path
) -> None:
    store, message = put(env, tmp_path)
    (tmp_path / "ptr").write_text(json.dumps(message))
    # A summary as 'put' prints it on a terminal is text, not a message.
    (tmp_path / "summary").write_text(f"location: {message['pointer']['location']}\n")

    def get(*args: str) -> subprocess.CompletedProcess[str]:
        return run(env, "get", *args, "-o", "out", "--store", store, stdin="text", cwd=tmp_path)

    path_without_at = get("ptr")
    assert path_without_at.returncode == 2
    assert "@ptr" in one_line_error(path_without_at)
    for args in (("hello",), ("@summary",), ("-",)):
        refused = get(*args)
        assert refused.returncode == 2, args
        assert "--inline" in one_line_error(refused)
    assert not (tmp_path / "out").exists()

    asked = get("hello", "--inline")
    assert asked.returncode == 0, asked.stderr
    assert (tmp_path / "out").read_text() == "hello"
    # An SQS message is a message, whatever its body: no flag needed.
    sqs_message = get(json.dumps({"Body": "inline body", "MessageAttributes": {}}))
    assert sqs_message.returncode == 0, sqs_message.stderr
    assert (tmp_path / "out").read_text() == "inline body"


def test_put_refuses_options_that_cannot_work(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "payload.json"
    source.write_bytes(b"x")
    out = run(env, "put", str(source), "--store", (tmp_path / "s").as_uri(), "--format", "aws")
    assert out.returncode == 2
    assert "S3" in one_line_error(out)


def test_get_of_a_corrupted_payload_fails_and_writes_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    store, message = put(env, tmp_path, "--compression", "zstd")
    stored = Path(message["pointer"]["location"].removeprefix("file://"))
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    out = run(
        env, "get", json.dumps(message), "-o", str(out_dir / "payload.json"), "--store", store
    )
    assert out.returncode == 1
    assert "IntegrityError" not in out.stderr  # a sentence, not a traceback
    one_line_error(out)
    assert os.listdir(out_dir) == []


def test_get_without_a_store_trusts_nothing(env: dict[str, str], tmp_path: Path) -> None:
    _, message = put(env, tmp_path)
    out = run(env, "get", message["Body"], "-o", str(tmp_path / "out"))
    assert out.returncode == 2
    assert "--store" in one_line_error(out)
    assert not (tmp_path / "out").exists()


def test_get_refuses_a_location_outside_the_stores(env: dict[str, str], tmp_path: Path) -> None:
    _, message = put(env, tmp_path)
    other = (tmp_path / "other").as_uri()
    out = run(env, "get", message["Body"], "-o", str(tmp_path / "out"), "--store", other)
    assert out.returncode == 1
    assert "--allow" in one_line_error(out)
    assert not (tmp_path / "out").exists()


def test_get_picks_one_record_of_a_lambda_event(env: dict[str, str], tmp_path: Path) -> None:
    store, message = put(env, tmp_path)
    event = {"Records": [{"body": "inline", "messageAttributes": {}}, {"body": message["Body"]}]}
    (tmp_path / "event.json").write_text(json.dumps(event))
    args = ("get", f"@{tmp_path / 'event.json'}", "-o", str(tmp_path / "out"), "--store", store)
    ambiguous = run(env, *args)
    assert ambiguous.returncode == 2
    assert "--record" in one_line_error(ambiguous)
    chosen = run(env, *args, "--record", "1")
    assert chosen.returncode == 0, chosen.stderr
    assert (tmp_path / "out").read_bytes() == PAYLOAD


def test_usage_errors_are_one_line_with_exit_2(env: dict[str, str]) -> None:
    out = run(env, "get", "x")
    assert out.returncode == 2
    assert "offload get --help" in one_line_error(out)


@pytest.mark.parametrize("name", sample_names())
def test_inspect_names_the_dialect_of_every_sample(env: dict[str, str], name: str) -> None:
    out = run(env, "inspect", f"@{MESSAGES / f'{name}.json'}", "--json")
    assert out.returncode == 0, out.stderr
    (found,) = json.loads(out.stdout)
    expected = EXPECTED[name]
    assert found["dialect"] == (expected.dialect if expected else "inline")
    assert found["sns_envelope"] == (name in {"sns-aws", "sns-inline", "sns-native"})
    if expected is not None:
        assert found["pointer"]["location"] == expected.location
    assert found["allowed"] is None


def test_inspect_reads_lambda_events(env: dict[str, str]) -> None:
    out = run(env, "inspect", f"@{OPS_DATA / 'lambda-sqs-event.json'}", "--json")
    assert out.returncode == 0, out.stderr
    assert [m["dialect"] for m in json.loads(out.stdout)] == ["aws", "inline"]
    out = run(env, "inspect", f"@{OPS_DATA / 'lambda-sns-event.json'}")
    assert out.returncode == 0, out.stderr
    assert "SNS envelope: yes" in out.stdout
    assert "native" in out.stdout


def test_inspect_resolves_against_the_store(env: dict[str, str], tmp_path: Path) -> None:
    store, message = put(env, tmp_path)
    body = message["Body"]
    info = run(env, "inspect", body, "--store", store, "--json")
    assert info.returncode == 0, info.stderr
    (found,) = json.loads(info.stdout)
    assert found["allowed"] is True
    assert found["resolution"]["method"] == "info"
    assert found["resolution"]["ok"]

    read = run(env, "inspect", body, "--store", store, "--read")
    assert read.returncode == 0, read.stderr
    assert "resolves:" in read.stdout
    assert "read and verified" in read.stdout

    Path(message["pointer"]["location"].removeprefix("file://")).unlink()
    gone = run(env, "inspect", body, "--store", store)
    assert gone.returncode == 1
    assert "PayloadNotFoundError" in gone.stdout

    elsewhere = run(env, "inspect", body, "--store", (tmp_path / "other").as_uri(), "--json")
    assert elsewhere.returncode == 1
    assert json.loads(elsewhere.stdout)[0]["allowed"] is False


def _aged(path: Path, days: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 100)
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_gc_dry_run_then_delete(env: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "store"
    _aged(root / "2026/10/01/old", 40)
    _aged(root / "2026/11/20/week-old", 8)
    _aged(root / "2026/11/25/young", 2)
    store = root.as_uri()

    dry = run(env, "gc", store, "--older-than", "7d")
    assert dry.returncode == 0, dry.stderr
    listed = [
        line.split()[2] for line in dry.stdout.splitlines() if line.startswith("would delete ")
    ]
    assert listed[:-1] == ["2026/10/01/old", "2026/11/20/week-old"]
    assert "kept 1 younger" in dry.stdout
    assert "--delete" in dry.stdout
    assert (root / "2026/10/01/old").exists()

    done = run(env, "gc", store, "--older-than", "7d", "--delete", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["deleted_count"], report["deleted_bytes"], report["kept"]) == (2, 200, 1)
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["young"]

    bad = run(env, "gc", store, "--older-than", "soon")
    assert bad.returncode == 2
    assert "--older-than" in one_line_error(bad)


def test_progress_is_drawn_in_binary_units_and_leaves_a_summary(
    env: dict[str, str], tmp_path: Path
) -> None:
    store, message = put(env, tmp_path)
    out = tmp_path / "out"
    code, stdout, drawn = run_on_terminal(
        env, "get", message["Body"], "-o", str(out), "--store", store
    )
    assert code == 0, drawn
    assert out.read_bytes() == PAYLOAD
    assert b"get:" in drawn
    # What stays on the terminal once the bar is cleared: one summary line.
    last = drawn.replace(b"\r\n", b"\n").split(b"\r")[-1].decode()
    mib = f"{len(PAYLOAD) / 2**20:.1f} MiB"
    assert re.fullmatch(rf"get: {mib} in [0-9.]+ s, [0-9.]+ [KMG]iB/s\n", last), last
    # One unit system: binary everywhere, also in the bar and the report on stdout.
    assert not re.search(rb"[0-9.]+ ?[kMG]B\b", drawn), drawn
    assert f"{mib} ({len(PAYLOAD):,} bytes)".encode() in stdout


# -- the payload on standard output ------------------------------------------------------------


def test_get_dash_writes_the_verified_payload_to_stdout(
    env: dict[str, str], tmp_path: Path
) -> None:
    store, message = put(env, tmp_path)
    out = run_bytes(env, "get", message["Body"], "-o", "-", "--store", store, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == PAYLOAD
    assert b"verified size and sha256 digest" in out.stderr  # the report keeps off stdout
    assert not (tmp_path / "-").exists()

    as_json = run_bytes(
        env, "get", message["Body"], "-o", "-", "--store", store, "--json", cwd=tmp_path
    )
    assert as_json.stdout == PAYLOAD
    assert json.loads(as_json.stderr)["path"] == "-"


def test_get_dash_writes_nothing_of_a_payload_that_fails_verification(
    env: dict[str, str], tmp_path: Path
) -> None:
    store, message = put(env, tmp_path)
    stored = Path(message["pointer"]["location"].removeprefix("file://"))
    stored.write_bytes(PAYLOAD[:-1] + b"X")
    out = run_bytes(env, "get", message["Body"], "-o", "-", "--store", store, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout == b""
    assert out.stderr.decode().startswith("offload: error: ")


# -- --json everywhere, failures included ------------------------------------------------------


def test_every_command_takes_json(env: dict[str, str]) -> None:
    listing = run(env, "--help").stdout
    commands = re.findall(r"^  ([a-z][a-z-]*)\s", listing.split("Commands:")[1], re.MULTILINE)
    assert {"plugins", "put", "get", "inspect", "gc"} <= set(commands)
    for command in commands:
        assert "--json" in run(env, command, "--help").stdout, command
    out = run(env, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    assert "core" in {row["name"] for row in json.loads(out.stdout)}


def test_failures_under_json_are_one_json_object(env: dict[str, str], tmp_path: Path) -> None:
    store, message = put(env, tmp_path)
    out = str(tmp_path / "out")

    usage = one_json_error(run(env, "get", message["Body"], "--json"))
    assert (usage["type"], usage["exit_status"]) == ("UsageError", 2)
    assert "--output" in usage["error"]

    no_store = one_json_error(run(env, "get", message["Body"], "-o", out, "--json"))
    assert (no_store["type"], no_store["exit_status"]) == ("ConfigurationError", 2)
    assert no_store["retryable"] is False

    other = (tmp_path / "other").as_uri()
    refused = one_json_error(
        run(env, "get", message["Body"], "-o", out, "--store", other, "--json")
    )
    assert (refused["type"], refused["exit_status"]) == ("LocationNotAllowedError", 1)
    assert refused["location"] == message["pointer"]["location"]

    Path(message["pointer"]["location"].removeprefix("file://")).unlink()
    missing = one_json_error(
        run(env, "get", message["Body"], "-o", out, "--store", store, "--json")
    )
    assert (missing["type"], missing["exit_status"]) == ("PayloadNotFoundError", 1)

    bad_age = one_json_error(run(env, "gc", store, "--older-than", "soon", "--json"))
    assert bad_age["exit_status"] == 2
    assert not (tmp_path / "out").exists()


# -- store URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        (
            "http://127.0.0.1:9/bucket/prefix",
            "--store s3://bucket/prefix --endpoint-url http://127.0.0.1:9",
        ),
        ("https://bucket.s3.amazonaws.com/x", "use 's3://bucket/x'"),
        (
            "https://s3.eu-west-1.amazonaws.com/bucket/x",
            "'s3://bucket/x' (with --region eu-west-1)",
        ),
        ("memory://x", "file:///path"),
        ("S3://b", "use 's3://b'"),
        ("s4://b", "Did you mean 's3://b'?"),
    ],
)
def test_put_to_a_store_url_that_cannot_be_one_says_what_to_use(
    env: dict[str, str], tmp_path: Path, url: str, advice: str
) -> None:
    source = tmp_path / "payload.json"
    source.write_bytes(b"x")
    out = run(env, "put", str(source), "--store", url, cwd=tmp_path)
    assert out.returncode == 2
    assert advice in one_line_error(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["payload.json"]


def test_get_inspect_and_gc_check_store_urls_too(env: dict[str, str], tmp_path: Path) -> None:
    _, message = put(env, tmp_path)
    out = str(tmp_path / "out")
    for args in (
        ("get", message["Body"], "-o", out, "--store", "HTTPS://b.s3.amazonaws.com/p"),
        (
            "get",
            message["Body"],
            "-o",
            out,
            "--store",
            (tmp_path / "store").as_uri(),
            "--allow",
            "S3://b/p",
        ),
        ("inspect", message["Body"], "--store", "https://b.s3.amazonaws.com/p"),
        ("gc", "s3a://b/p", "--older-than", "7d"),
    ):
        refused = run(env, *args)
        assert refused.returncode == 2, args
        assert "'s3://b/p'" in one_line_error(refused), args
    assert not (tmp_path / "out").exists()


# -- AWS flags ---------------------------------------------------------------------------------


@pytest.fixture
def aws_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """No AWS credentials anywhere: no variables, no files, no instance metadata."""
    clean = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    clean["AWS_CONFIG_FILE"] = str(tmp_path / "no-aws-config")
    clean["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws-credentials")
    clean["AWS_EC2_METADATA_DISABLED"] = "true"
    return clean


def test_s3_flags_reach_the_store_for_every_command(
    aws_env: dict[str, str], moto_server: MotoServer, bucket: str, tmp_path: Path
) -> None:
    env = dict(aws_env, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    key_arn = moto_server.client("kms").create_key()["KeyMetadata"]["Arn"]
    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    store = f"s3://{bucket}/{prefix}"
    aws = ("--endpoint-url", moto_server.endpoint, "--region", moto_server.region)
    source = tmp_path / "payload.json"
    source.write_bytes(PAYLOAD)

    sent = run(
        env, "put", str(source), "--store", store, *aws,
        "--sse-kms-key", key_arn, "--expires-after", "7d", "--format", "native",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    message = json.loads(sent.stdout)
    expires = datetime.fromisoformat(message["pointer"]["expires"])
    assert timedelta(days=6) < expires - datetime.now(timezone.utc) <= timedelta(days=7)
    key = message["pointer"]["location"].removeprefix(f"s3://{bucket}/")
    head = moto_server.client("s3").head_object(Bucket=bucket, Key=key)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)

    got = run_bytes(env, "get", message["Body"], "-o", "-", "--store", store, *aws, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stdout == PAYLOAD
    inspected = run(env, "inspect", message["Body"], "--store", store, "--read", "--json", *aws)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)[0]["resolution"]["ok"]
    listed = run(env, "gc", store, "--older-than", "1d", "--json", *aws)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["kept"] == 1


def test_profile_picks_the_credentials_and_missing_ones_get_cli_advice(
    aws_env: dict[str, str], moto_server: MotoServer, bucket: str, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[offload-cli]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    env = dict(aws_env, AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    source = tmp_path / "payload.json"
    source.write_bytes(PAYLOAD)
    args = (
        "put",
        str(source),
        "--store",
        f"s3://{bucket}/profiles",
        "--endpoint-url",
        moto_server.endpoint,
    )

    with_profile = run(env, *args, "--profile", "offload-cli")
    assert with_profile.returncode == 0, with_profile.stderr

    without = run(env, *args)
    assert without.returncode == 1
    advice = one_line_error(without)
    assert "no AWS credentials" in advice
    assert "--profile" in advice
    assert "AWS_PROFILE" in advice
    assert "storage options" not in advice

    unknown = run(env, *args, "--profile", "nobody")
    assert unknown.returncode == 2
    assert "'nobody'" in one_line_error(unknown)


def test_store_options_that_cannot_apply_are_refused_before_anything_is_stored(
    aws_env: dict[str, str], moto_server: MotoServer, bucket: str, tmp_path: Path
) -> None:
    env = dict(aws_env, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    source = tmp_path / "payload.bin"
    source.write_bytes(b"\xff\xfe binary")
    prefix = f"refused-{uuid.uuid4().hex[:8]}"
    s3 = ("--store", f"s3://{bucket}/{prefix}", "--endpoint-url", moto_server.endpoint)

    for args, advice in [
        (("--profile", "p", "--store", (tmp_path / "s").as_uri()), "only for s3:// stores"),
        ((*s3, "--expires-after", "7d"), "--format native"),  # the AWS format has no expiry
        (s3, "--format native"),  # nor binary payloads
    ]:
        out = run(env, "put", str(source), *args)
        assert out.returncode == 2, args
        error = one_line_error(out)
        assert advice in error, error
        assert "pointer_format=" not in error
    listed = moto_server.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    assert listed.get("KeyCount", 0) == 0
    assert not (tmp_path / "s").exists()

"""The operator commands as an operator runs them: the installed ``offload`` script, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from sample_messages import EXPECTED, MESSAGES, sample_names

OFFLOAD = str(Path(sys.executable).with_name("offload"))
OPS_DATA = Path(__file__).parent / "data" / "ops"
PAYLOAD = b"".join(b'{"order": %d, "sku": "SKU-%05d"}\n' % (i, i % 977) for i in range(60_000))


@pytest.fixture
def env() -> dict[str, str]:
    """The environment without OFFLOAD_* settings that would change what gets loaded."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OFFLOAD_")}


def run(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OFFLOAD, *args], capture_output=True, text=True, env=env, input=stdin, timeout=60
    )


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


def test_put_prints_the_pointer_message(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "payload.json"
    source.write_bytes(PAYLOAD)
    out = run(env, "put", str(source), "--store", (tmp_path / "store").as_uri())
    assert out.returncode == 0, out.stderr
    assert '{"offload_pointer":1' in out.stdout
    assert f"{len(PAYLOAD):,} bytes" in out.stdout


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


def test_get_draws_a_progress_bar_on_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    termios = pytest.importorskip("termios", reason="needs a POSIX terminal")
    import fcntl
    import pty
    import struct

    store, message = put(env, tmp_path)
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
            [OFFLOAD, "get", message["Body"], "-o", str(tmp_path / "out"), "--store", store],
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=env,
            timeout=60,
        )
    finally:
        os.close(terminal)
        reader.join(timeout=10)
        os.close(controller)
    assert out.returncode == 0
    assert b"get:" in b"".join(drawn)
    assert (tmp_path / "out").read_bytes() == PAYLOAD

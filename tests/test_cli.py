"""The ``offload`` script as a user runs it: a real subprocess of the installed entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

OFFLOAD = str(Path(sys.executable).with_name("offload"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OFFLOAD, *args], capture_output=True, text=True, env=env, timeout=60)


def test_version_lists_plugins_with_distributions(subprocess_env: dict[str, str]) -> None:
    out = run("--version", env=subprocess_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("offload 0.1.0")
    assert "acme: acme-offload-1.2.3" in out.stdout
    assert "core: offload-0.1.0" in out.stdout


def test_plugins_prints_json_with_what_each_registers(subprocess_env: dict[str, str]) -> None:
    out = run("plugins", env=subprocess_env)
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert rows["acme"]["distribution"] == "acme-offload"
    assert rows["acme"]["checksums"][0]["name"] == "acme-sum"
    assert {b["name"] for b in rows["backends"]["backends"]} >= {"local", "memory", "fsspec"}
    assert {f["name"] for f in rows["core"]["pointer_formats"]} >= {"aws", "native"}
    assert "offload_register_backends" in rows["backends"]["hooks"]


def test_plugins_all_shows_what_the_blocklist_skipped(subprocess_env: dict[str, str]) -> None:
    env = dict(subprocess_env, OFFLOAD_DISABLED_PLUGINS="acme")
    rows = {row["name"]: row for row in json.loads(run("plugins", env=env).stdout)}
    assert "acme" not in rows
    rows = {row["name"]: row for row in json.loads(run("plugins", "--all", env=env).stdout)}
    assert rows["acme"]["loaded"] is False
    assert rows["core"]["loaded"] is True


def test_plugins_can_add_commands(subprocess_env: dict[str, str]) -> None:
    out = run("acme-hello", env=subprocess_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello from acme"


def test_plugins_takes_json_like_every_command(subprocess_env: dict[str, str]) -> None:
    out = run("plugins", "--json", env=subprocess_env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(run("plugins", env=subprocess_env).stdout)

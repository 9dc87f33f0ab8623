"""Plugin discovery through entry points, allow/blocklists, lazy targets and typed lookups."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from offload_core import Plugins, hookimpl
from offload_core.errors import MissingDependencyError, PluginConflictError, PluginNotFoundError


def test_third_party_distribution_is_discovered_with_its_distribution(third_party: Path) -> None:
    plugins = Plugins.from_entry_points(env={})
    info = {i.name: i for i in plugins.info()}
    assert info["acme"].distribution == "acme-offload"
    assert info["acme"].version == "1.2.3"
    assert "offload_register_checksums" in info["acme"].hooks
    assert info["core"].distribution == "offload"
    assert info["backends"].distribution == "offload"


def test_third_party_plugin_is_selectable_by_name(third_party: Path) -> None:
    plugins = Plugins.from_entry_points(env={})
    factory = plugins.get("checksum", "acme-sum")
    hasher = factory()
    hasher.update(b"abc")
    assert hasher.hexdigest() == "a9993e364706816aba3e25717850c26c9cd0d89d"


def test_allowlist_loads_only_named_plugins(third_party: Path) -> None:
    plugins = Plugins.from_entry_points(env={"OFFLOAD_PLUGINS": "core, acme"})
    assert sorted(i.name for i in plugins.info()) == ["acme", "core"]
    with pytest.raises(PluginNotFoundError):
        plugins.get("backend", "local")


def test_empty_allowlist_loads_nothing(third_party: Path) -> None:
    plugins = Plugins.from_entry_points(env={"OFFLOAD_PLUGINS": ""})
    assert plugins.info() == []


def test_blocklist_skips_named_plugins(third_party: Path) -> None:
    plugins = Plugins.from_entry_points(env={"OFFLOAD_DISABLED_PLUGINS": "acme"})
    names = {i.name for i in plugins.info()}
    assert "acme" not in names
    assert {"core", "backends"} <= names
    with pytest.raises(PluginNotFoundError):
        plugins.get("checksum", "acme-sum")


def test_missing_optional_dependency_names_what_to_install(third_party: Path) -> None:
    plugins = Plugins.from_entry_points(env={})
    entry = plugins.entry_for_url("acme://bucket/prefix")
    assert entry.name == "acme"
    with pytest.raises(MissingDependencyError) as info:
        entry.load()
    assert info.value.extra == "acme"
    assert info.value.module == "acme_sdk_not_installed"
    assert "pip install 'offload[acme]'" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_misspelled_name_suggests_the_registered_one(plugins: Plugins) -> None:
    with pytest.raises(PluginNotFoundError) as info:
        plugins.get("checksum", "sha265")
    assert info.value.suggestion == "sha256"
    assert "Did you mean 'sha256'?" in str(info.value)
    assert "sha256" in info.value.available


def test_unknown_url_scheme_falls_back_to_fsspec(plugins: Plugins) -> None:
    assert plugins.entry_for_url("gcs://bucket/x").name == "fsspec"
    assert plugins.entry_for_url("file:///tmp/x").name == "local"
    assert plugins.entry_for_url("/tmp/x").name == "local"


def test_two_plugins_registering_one_name_is_a_conflict() -> None:
    class One:
        @hookimpl
        def offload_register_checksums(self, register):  # type: ignore[no-untyped-def]
            register("dup", "hashlib:sha1")

    class Two(One):
        pass

    plugins = Plugins.from_modules(one=One(), two=Two())
    with pytest.raises(PluginConflictError) as info:
        plugins.get("checksum", "dup")
    assert sorted(info.value.plugins) == ["one", "two"]


def test_registering_imports_no_backend_or_sdk() -> None:
    code = textwrap.dedent(
        """
        import sys
        from offload_core import default_plugins
        plugins = default_plugins()
        plugins.describe()
        heavy = [m for m in ("boto3", "botocore", "s3fs", "offload_backends.local",
                             "offload_backends.fsspec_store", "offload_core.formats.aws")
                 if m in sys.modules]
        print(heavy)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_observer_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    from offload_core.events import StoredEvent

    seen = []

    class Broken:
        @hookimpl
        def offload_stored(self, event):  # type: ignore[no-untyped-def]
            raise RuntimeError("metrics backend down")

    class Recorder:
        @hookimpl
        def offload_stored(self, event):  # type: ignore[no-untyped-def]
            seen.append(event)

    plugins = Plugins.from_modules(broken=Broken(), recorder=Recorder())
    event = StoredEvent("memory://x/k", 10, 10, "none", 0.0)
    plugins.notify(event)
    assert seen == [event]
    assert "metrics backend down" in caplog.text


def test_hookimpl_with_unknown_hook_name_is_rejected() -> None:
    import pluggy

    class Typo:
        @hookimpl
        def offload_register_backend(self, register):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(pluggy.PluginValidationError):
        Plugins.from_modules(typo=Typo())

"""Installs a plugin distribution the way pip lays one out, for tests of third-party plugins."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def install_distribution(
    site: Path, name: str, version: str, modules: Mapping[str, str], entry_point: str
) -> Path:
    """Write ``modules`` (file name -> source) and ``name``'s dist-info into ``site``, with
    ``entry_point`` (``"key = module"``) in the ``offload`` group; the folder to put on
    ``sys.path`` (or ``PYTHONPATH``)."""
    site.mkdir(parents=True, exist_ok=True)
    for filename, source in modules.items():
        (site / filename).write_text(source)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[offload]\n{entry_point}\n")
    (info / "RECORD").write_text("")
    return site

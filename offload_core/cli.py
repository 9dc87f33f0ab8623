"""The ``offload`` command line. Needs the ``cli`` extra (click)."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from typing import Any

try:
    import click
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise SystemExit(
        "the offload command needs the 'cli' extra: pip install 'offload[cli]'"
    ) from exc

from . import __version__
from .errors import OffloadError
from .plugins import ENTRY_POINT_GROUP, default_plugins

__all__ = ["cli", "main"]


def _version_text() -> str:
    lines = [f"offload {__version__} from {__file__.rsplit('/', 2)[0]}", "registered plugins:"]
    for info in default_plugins().info():
        dist = f"{info.distribution}-{info.version}" if info.distribution else "(no distribution)"
        lines.append(f"    {info.name}: {dist}")
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and the registered plugins, then exit.",
)
def cli() -> None:
    """offload: large messages on SNS, SQS and EventBridge through object storage."""


@cli.command()
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also list installed plugins that OFFLOAD_PLUGINS/OFFLOAD_DISABLED_PLUGINS skip.",
)
def plugins(show_all: bool) -> None:
    """List the plugins as JSON: distribution, hooks, and what each registers."""
    loaded = default_plugins()
    rows: list[dict[str, Any]] = [dict(row, loaded=True) for row in loaded.describe()]
    if show_all:
        names = {row["name"] for row in rows}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in names:
                dist = ep.dist
                rows.append(
                    {
                        "name": ep.name,
                        "distribution": dist.metadata["Name"] if dist else None,
                        "version": dist.version if dist else None,
                        "loaded": False,
                    }
                )
    click.echo(json.dumps(rows, indent=2))


@cli.command()
@click.option(
    "--size",
    "size_mib",
    type=click.IntRange(1, 64 * 1024),
    default=200,
    show_default=True,
    help="Size of the largest payload, in MiB.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo(size_mib: int, as_json: bool) -> None:
    """Publish and resolve payloads of several sizes through a local store; exit 1 on failure."""
    from dataclasses import asdict

    from .demo import run_demo

    rows = run_demo(big_size=size_mib * 2**20)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        header = (
            "message",
            "bytes",
            "sent as",
            "stored bytes",
            "codec",
            "format",
            "check",
            "seconds",
        )
        table = [header] + [
            (
                r.name,
                f"{r.size:,}",
                "pointer" if r.offloaded else "inline",
                f"{r.stored_size:,}" if r.stored_size is not None else "-",
                r.codec,
                r.pointer_format,
                ("refused" if r.name == "hostile pointer" else "verified")
                if r.verified
                else "FAILED",
                f"{r.seconds:.2f}",
            )
            for r in rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            click.echo(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )
        for r in rows:
            if r.error:
                click.echo(f"{r.name}: {r.error}", err=True)
    if not all(r.verified for r in rows):
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``offload`` script: typed errors become one line and exit status 1."""
    try:
        default_plugins().add_commands(cli)
        cli.main(args=argv, prog_name="offload", standalone_mode=True)
    except OffloadError as exc:
        click.echo(f"offload: error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()

"""The ``offload`` command line. Needs the ``cli`` extra (click)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

try:
    import click
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise SystemExit(
        "the offload command needs the 'cli' extra: pip install 'offload[cli]'"
    ) from exc

from . import __version__, ops
from .errors import ConfigurationError, LocationNotAllowedError, OffloadError
from .offloader import Offloader
from .plugins import ENTRY_POINT_GROUP, default_plugins
from .pointer import Pointer

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


# -- operator commands ----------------------------------------------------------------------


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    try:
        return ops.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _size(n: int | None) -> str:
    return "unknown" if n is None else f"{n:,} bytes"


@contextmanager
def _progress(total: int | None, what: str) -> Iterator[Callable[[int], None]]:
    """A byte counter drawn as a tqdm bar on stderr when it is a terminal; quiet otherwise."""
    from tqdm import tqdm

    with tqdm(
        total=total,
        desc=what,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        leave=False,
        disable=not sys.stderr.isatty(),
    ) as bar:
        yield bar.update


def _describe_pointer(pointer: Pointer) -> list[tuple[str, str]]:
    rows = [
        ("location", pointer.location),
        ("size", _size(pointer.size)),
        ("stored", f"{_size(pointer.stored_size)}, codec {pointer.codec}"),
        ("checksum", f"{pointer.checksum} {pointer.digest}" if pointer.digest else "none"),
    ]
    if pointer.content_type:
        rows.append(("content type", pointer.content_type))
    if pointer.expires:
        rows.append(("expires", pointer.expires.isoformat()))
    return rows


def _echo_rows(rows: list[tuple[str, str]], indent: str = "") -> None:
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        click.echo(f"{indent}{label + ':':<{width}} {value}")


_store_option = click.option(
    "--store",
    "stores",
    metavar="URL",
    multiple=True,
    help="A store whose payloads may be read (repeatable).",
)
_allow_option = click.option(
    "--allow",
    metavar="URL",
    multiple=True,
    help="Another store URL to trust, such as another account's bucket (repeatable).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--store", required=True, metavar="URL", help="Where to store the payload.")
@click.option("--compression", metavar="NAME", help="A registered compressor, such as zstd.")
@click.option("--checksum", default="sha256", show_default=True, help="Digest to carry.")
@click.option(
    "--format",
    "pointer_format",
    metavar="aws|native",
    help="Pointer format; default aws for S3 without compression, native otherwise.",
)
@click.option("--content-type", metavar="TYPE", help="Media type recorded in the pointer.")
@_json_option
def put(
    file: Path,
    store: str,
    compression: str | None,
    checksum: str,
    pointer_format: str | None,
    content_type: str | None,
    as_json: bool,
) -> None:
    """Store FILE and print the pointer message (body and attributes) that names it.

    The --json output is an SQS message as boto3 returns one; 'offload get' reads it back.
    """
    offloader = Offloader(
        store, compression=compression, checksum=checksum, pointer_format=pointer_format
    )
    with _progress(file.stat().st_size, "put") as update:
        stored = ops.put_file(offloader, file, content_type=content_type, progress=update)
    if as_json:
        _print_json(stored.to_json())
        return
    rows = _describe_pointer(stored.pointer)
    rows.append(("format", offloader.pointer_format))
    rows.append(("body", stored.body))
    rows += [
        (f"attribute {name}", f"{a.data_type} {a.value!r}") for name, a in stored.attributes.items()
    ]
    _echo_rows(rows)


@cli.command()
@click.argument("message", metavar="POINTER|MESSAGE")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write the payload to (replaced only once the payload is verified).",
)
@_store_option
@_allow_option
@click.option("--record", type=click.IntRange(0), help="Which message of a multi-record event.")
@_json_option
def get(
    message: str,
    output: Path,
    stores: tuple[str, ...],
    allow: tuple[str, ...],
    record: int | None,
    as_json: bool,
) -> None:
    """Write the payload a pointer or message names to a file, verified.

    POINTER|MESSAGE is a message body, an SQS message or Lambda event as JSON, '-' for stdin or
    @PATH for a file. Only locations under --store/--allow are read.
    """
    offloader = ops.consumer(stores, allow)
    messages = ops.load_messages(message, sys.stdin.buffer)
    if record is None and len(messages) > 1:
        last = len(messages) - 1
        raise ConfigurationError(
            f"the input holds {len(messages)} messages; choose one with --record 0..{last}"
        )
    index = record or 0
    if index >= len(messages):
        raise ConfigurationError(f"--record {index}: the input holds {len(messages)} message(s)")
    chosen = messages[index]
    received = offloader.parse(chosen.body, chosen.attributes)
    total = received.pointer.size if received.pointer else None
    with _progress(total, "get") as update:
        saved = ops.save_payload(offloader, received, output, progress=update)
    if as_json:
        _print_json(saved.to_json())
        return
    if not saved.offloaded:
        click.echo(f"wrote {saved.path}: {_size(saved.size)} (inline message, no pointer)")
    elif saved.checks:
        click.echo(
            f"wrote {saved.path}: {_size(saved.size)} from {saved.location} "
            f"({saved.dialect}); verified {' and '.join(saved.checks)}"
        )
    else:
        click.echo(f"wrote {saved.path}: {_size(saved.size)} from {saved.location}")
        click.echo(
            f"offload: warning: the {saved.dialect} pointer carries no size or digest; "
            "the payload could not be verified",
            err=True,
        )


@cli.command(name="inspect")
@click.argument("message", metavar="MESSAGE")
@_store_option
@_allow_option
@click.option(
    "--read",
    is_flag=True,
    help="Resolve by reading and verifying the whole payload, not only asking for its info.",
)
@_json_option
def inspect_command(
    message: str, stores: tuple[str, ...], allow: tuple[str, ...], read: bool, as_json: bool
) -> None:
    """Say what a message is: its dialect, envelope, what it points to and whether that resolves.

    MESSAGE is as for 'get' (a Lambda event may hold several). With --store/--allow, the
    location is checked against them and, when allowed, looked up in the store (or read and
    verified with --read). Exit status 1 if any message is malformed, not allowed or does not
    resolve.
    """
    offloader = ops.consumer(stores, allow) if stores or allow else None
    messages = ops.load_messages(message, sys.stdin.buffer)
    found = [ops.inspect_message(m, offloader, read=read) for m in messages]
    if as_json:
        _print_json([f.to_json() for f in found])
    else:
        for number, item in enumerate(found, 1):
            if len(found) > 1:
                click.echo(f"message {number} of {len(found)}:")
            _echo_rows(_inspection_rows(item), "  " if len(found) > 1 else "")
    if not all(f.ok for f in found):
        sys.exit(1)


def _inspection_rows(item: ops.Inspection) -> list[tuple[str, str]]:
    rows = [
        ("source", item.source),
        ("SNS envelope", "yes" if item.sns_envelope else "no"),
        ("dialect", item.dialect or "malformed pointer"),
    ]
    if item.error:
        return [*rows, ("error", item.error)]
    if item.pointer is None:
        return [
            *rows,
            ("body", _size(item.body_size)),
            ("attributes", ", ".join(item.attributes) or "none"),
        ]
    rows += _describe_pointer(item.pointer)
    if item.expired is not None:
        rows.append(("expired", "yes" if item.expired else "no"))
    rows.append(("verifiable", " and ".join(ops.verified_checks(item.pointer)) or "nothing"))
    if item.allowed is None:
        rows.append(("allowed", "not checked: pass --store/--allow to check and resolve it"))
    elif not item.allowed:
        rows.append(("allowed", "NO: not under any --store or --allow location"))
    else:
        rows.append(("allowed", f"yes, under {item.store}"))
    resolution = item.resolution
    if resolution is not None:
        how = "read and verified" if resolution.method == "read" else "info only"
        status = "yes" if resolution.ok else "NO"
        rows.append(("resolves", f"{status} ({how}): {resolution.detail}"))
        if resolution.error:
            rows.append(("error", resolution.error))
    return rows


@cli.command()
@click.argument("store", metavar="STORE")
@click.option(
    "--older-than",
    required=True,
    callback=_duration,
    help="Age past which a payload is garbage: 30m, 12h, 7d, 2w.",
)
@click.option("--prefix", default="", help="Only keys under this prefix of the store.")
@click.option("--delete", is_flag=True, help="Delete them; without it, only list (dry run).")
@_json_option
def gc(store: str, older_than: timedelta, prefix: str, delete: bool, as_json: bool) -> None:
    """List (or with --delete, delete) payloads in STORE older than --older-than.

    For stores without a lifecycle rule (local disk, other fsspec stores); S3 buckets should
    use one ('offload lifecycle'). Younger objects are never touched.
    """
    report = ops.collect_garbage(
        default_plugins().open_store(store), older_than, delete=delete, prefix=prefix
    )
    if as_json:
        _print_json(report.to_json())
    else:
        verb = "would delete" if report.dry_run else "deleted"
        deleted = {o.key for o in report.deleted}
        for info in report.matched:
            if report.dry_run or info.key in deleted:
                modified = info.modified.isoformat() if info.modified else "?"
                click.echo(f"{verb} {info.key}  {_size(info.size)}  modified {modified}")
        for key, error in report.failed:
            click.echo(f"FAILED {key}: {error}", err=True)
        count, size = (
            (len(report.matched), report.matched_bytes)
            if report.dry_run
            else (len(report.deleted), report.deleted_bytes)
        )
        summary = f"{verb} {count} object(s), {_size(size)}; kept {report.kept} younger"
        if report.unknown_age:
            summary += f", {report.unknown_age} of unknown age"
        if report.dry_run and count:
            summary += "; run again with --delete to delete them"
        click.echo(summary)
    if report.failed:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``offload`` script. Errors are one line on stderr; the exit status is 0
    for success, 1 when an operation or a verification failed, 2 for usage and configuration
    errors."""
    try:
        default_plugins().add_commands(cli)
        code = cli.main(args=argv, prog_name="offload", standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        _fail(exc.format_message() + hint, exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    except ConfigurationError as exc:
        _fail(str(exc), 2)
    except LocationNotAllowedError as exc:
        _fail(
            f"refusing to read {exc.location!r}: it is not under a --store or --allow location; "
            "pass --allow with its store's URL if the sender is trusted",
            1,
        )
    except OffloadError as exc:
        _fail(str(exc), 1)
    except BrokenPipeError:
        # The reader went away (``offload ... | head``): stay quiet, like other tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        _fail(str(exc), 1)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"offload: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()

"""The ``offload`` command line. Needs the ``cli`` extra (click)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
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
from .plugins import ENTRY_POINT_GROUP, default_plugins
from .pointer import Pointer

__all__ = ["cli", "json_option", "main", "print_json", "progress_bar"]


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
@click.option("--json", "as_json", is_flag=True, help="Print JSON (what it prints anyway).")
def plugins(show_all: bool, as_json: bool) -> None:
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


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return ops.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (for commands that plugins add, too)."""
    click.echo(json.dumps(value, indent=2))


_BINARY_UNITS = ("KiB", "MiB", "GiB", "TiB")


def _binary(n: float) -> str:
    """``n`` bytes in binary units, the one unit system of the command line: 512 B, 1.5 MiB."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in _BINARY_UNITS:
        n /= 1024
        if n < 1024 or unit == _BINARY_UNITS[-1]:
            break
    return f"{n:.1f} {unit}"


def _size(n: int | None) -> str:
    """A byte count for people, exact too: ``900 bytes``, ``1.5 MiB (1,572,864 bytes)``."""
    if n is None:
        return "unknown"
    return f"{n:,} bytes" if n < 1024 else f"{_binary(n)} ({n:,} bytes)"


def _seconds(elapsed: float) -> str:
    if elapsed < 60:
        return f"{elapsed:.2f} s" if elapsed < 1 else f"{elapsed:.1f} s"
    minutes, seconds = divmod(round(elapsed), 60)
    return f"{minutes} min {seconds} s"


def _bar_type() -> Any:
    """tqdm's bar drawing sizes and rates in binary units (tqdm's own use decimal prefixes)."""
    from tqdm import tqdm

    class BinaryBar(tqdm):  # type: ignore[misc]
        @property
        def format_dict(self) -> dict[str, Any]:
            values: dict[str, Any] = super().format_dict
            rate, total = values.get("rate"), values.get("total")
            values["done"] = _binary(values.get("n") or 0)
            values["size"] = "?" if total is None else _binary(total)
            values["speed"] = f"{_binary(rate)}/s" if rate else "? B/s"
            return values

    return BinaryBar


@contextmanager
def progress_bar(total: int | None, what: str) -> Iterator[Callable[[int], None]]:
    """A byte counter drawn as a bar on stderr when it is a terminal, replaced by a summary line
    (``get: 1.5 MiB in 0.4 s, 3.8 MiB/s``) once the transfer is done; quiet otherwise."""
    if not sys.stderr.isatty():
        yield _ignore
        return
    bar_format = (
        "{desc}: {percentage:3.0f}%|{bar}| {done}/{size} [{elapsed}<{remaining}, {speed}]"
        if total
        else "{desc}: {done} [{elapsed}, {speed}]"
    )
    bar = _bar_type()(total=total, desc=what, leave=False, bar_format=bar_format)
    try:
        yield bar.update
    except BaseException:
        bar.close()
        raise
    done, elapsed = bar.n, bar.format_dict["elapsed"]
    bar.close()
    rate = f", {_binary(done / elapsed)}/s" if elapsed > 0 else ""
    click.echo(f"{what}: {_binary(done)} in {_seconds(elapsed)}{rate}", err=True)


def _ignore(_n: int) -> None:
    pass


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
#: The ``--json`` flag every command takes (its value arrives as ``as_json``).
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _aws_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--endpoint-url``, ``--profile`` and ``--region``, for the command's s3:// stores."""
    options = [
        click.option(
            "--endpoint-url",
            metavar="URL",
            help="S3 endpoint to use instead of AWS's (an S3-compatible service, a local moto).",
        ),
        click.option("--profile", help="AWS profile for s3:// stores (default: AWS_PROFILE)."),
        click.option("--region", help="AWS region of s3:// stores (default: the AWS config's)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


#: The command line's flag for each field of :class:`ops.S3Options`.
_S3_FLAGS = {
    "endpoint_url": "--endpoint-url",
    "profile": "--profile",
    "region": "--region",
    "sse": "--sse",
    "kms_key_id": "--sse-kms-key",
}


def _s3_options(urls: Sequence[str], **values: str | None) -> ops.S3Options:
    """The S3 options given (``values`` by :class:`ops.S3Options` field), after checking the
    command's store URLs; refused when none of those is an s3:// store."""
    for url in urls:
        ops.check_store_url(url, persistent=True)
    given = {name: value for name, value in values.items() if value}
    if given and not any(url.startswith("s3://") for url in urls):
        flags = " and ".join(_S3_FLAGS[name] for name in given)
        stores = f"{urls[0]} is not one" if len(urls) == 1 else f"none of {', '.join(urls)} is"
        raise ConfigurationError(f"{flags}: only for s3:// stores, and {stores}")
    return ops.S3Options(**given)


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
@click.option(
    "--expires-after",
    callback=_duration,
    metavar="AGE",
    help="Record an expiry (30m, 12h, 7d) in the pointer and the object's metadata; deleting "
    "is the store's lifecycle rule. Needs the native format.",
)
@click.option(
    "--sse",
    type=click.Choice(["AES256", "aws:kms", "aws:kms:dsse"]),
    help="S3 server-side encryption (default: the bucket's).",
)
@click.option("--sse-kms-key", metavar="KEY", help="KMS key id or ARN to encrypt with (aws:kms).")
@_aws_options
@json_option
def put(
    file: Path,
    store: str,
    compression: str | None,
    checksum: str,
    pointer_format: str | None,
    content_type: str | None,
    expires_after: timedelta | None,
    sse: str | None,
    sse_kms_key: str | None,
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """Store FILE and print the pointer message (body and attributes) that names it.

    On a terminal it prints a summary; otherwise (redirected or piped), and with --json, it
    prints the message as JSON, an SQS message as boto3 returns one, which 'offload get' reads
    back: offload put FILE --store URL > msg.json; offload get @msg.json -o OUT --store URL.
    """
    s3 = _s3_options(
        [store],
        endpoint_url=endpoint_url,
        profile=profile,
        region=region,
        sse=sse,
        kms_key_id=sse_kms_key,
    )
    offloader = ops.publisher(
        store,
        compression=compression,
        checksum=checksum,
        pointer_format=pointer_format,
        expires_after=expires_after,
        s3=s3,
        persistent=True,
    )
    with progress_bar(file.stat().st_size, "put") as update:
        stored = ops.put_file(offloader, file, content_type=content_type, progress=update)
    if as_json or not sys.stdout.isatty():
        print_json(stored.to_json())
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
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    help="File to write the payload to (replaced only once the payload is verified), or - for "
    "standard output (written once verified).",
)
@_store_option
@_allow_option
@click.option("--record", type=click.IntRange(0), help="Which message of a multi-record event.")
@click.option(
    "--inline",
    is_flag=True,
    help="Also take a bare body that is no pointer as the payload (written as it is).",
)
@_aws_options
@json_option
def get(
    message: str,
    output: Path,
    stores: tuple[str, ...],
    allow: tuple[str, ...],
    record: int | None,
    inline: bool,
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """Write the payload a pointer or message names to a file, verified.

    POINTER|MESSAGE is a pointer body, an SQS message (what 'offload put' prints), a Lambda or
    EventBridge event as JSON, '-' for stdin or @PATH for a file. Only locations under
    --store/--allow are read. With -o -, the payload goes to standard output and the report to
    standard error.
    """
    s3 = _s3_options([*stores, *allow], endpoint_url=endpoint_url, profile=profile, region=region)
    offloader = ops.consumer(stores, allow, s3=s3, persistent=True)
    chosen = ops.choose_message(ops.load_messages(message, sys.stdin.buffer), record)
    received = ops.receive(offloader, chosen, inline=inline, given=message)
    total = received.pointer.size if received.pointer else None
    to_stdout = str(output) == "-"
    with progress_bar(total, "get") as update:
        if to_stdout:
            saved = ops.write_payload(offloader, received, sys.stdout.buffer, progress=update)
        else:
            saved = ops.save_payload(offloader, received, output, progress=update)
    if as_json:
        click.echo(json.dumps(saved.to_json(), indent=2), err=to_stdout)
        return
    target = "standard output" if to_stdout else saved.path
    if not saved.offloaded:
        click.echo(
            f"wrote {target}: {_size(saved.size)} (inline message, no pointer)", err=to_stdout
        )
    elif saved.checks:
        click.echo(
            f"wrote {target}: {_size(saved.size)} from {saved.location} "
            f"({saved.dialect}); verified {' and '.join(saved.checks)}",
            err=to_stdout,
        )
    else:
        click.echo(f"wrote {target}: {_size(saved.size)} from {saved.location}", err=to_stdout)
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
@_aws_options
@json_option
def inspect_command(
    message: str,
    stores: tuple[str, ...],
    allow: tuple[str, ...],
    read: bool,
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """Say what a message is: its dialect, envelope, what it points to and whether that resolves.

    MESSAGE is as for 'get' (a Lambda event may hold several). With --store/--allow, the
    location is checked against them and, when allowed, looked up in the store (or read and
    verified with --read). Exit status 1 if any message is malformed, not allowed or does not
    resolve.
    """
    s3 = _s3_options([*stores, *allow], endpoint_url=endpoint_url, profile=profile, region=region)
    offloader = ops.consumer(stores, allow, s3=s3, persistent=True) if stores or allow else None
    messages = ops.load_messages(message, sys.stdin.buffer)
    found = [ops.inspect_message(m, offloader, read=read) for m in messages]
    if as_json:
        print_json([f.to_json() for f in found])
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
    metavar="AGE",
    help="Age past which a payload is garbage: 30m, 12h, 7d, 2w.",
)
@click.option("--prefix", default="", help="Only keys under this prefix of the store.")
@click.option("--delete", is_flag=True, help="Delete them; without it, only list (dry run).")
@_aws_options
@json_option
def gc(
    store: str,
    older_than: timedelta,
    prefix: str,
    delete: bool,
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """List (or with --delete, delete) payloads in STORE older than --older-than.

    For stores without a lifecycle rule (local disk, other fsspec stores); S3 buckets should
    use one ('offload lifecycle'). Younger objects are never touched.
    """
    s3 = _s3_options([store], endpoint_url=endpoint_url, profile=profile, region=region)
    opened = ops.open_store(store, s3=s3, persistent=True)
    report = ops.collect_garbage(opened, older_than, delete=delete, prefix=prefix)
    if as_json:
        print_json(report.to_json())
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
    """Entry point of the ``offload`` script. Errors are one line on stderr, a JSON object under
    ``--json``; the exit status is 0 for success, 1 when an operation or a verification failed,
    2 for usage and configuration errors."""
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in (args[: args.index("--")] if "--" in args else args)

    def fail(message: str, code: int, kind: str, exc: BaseException | None = None) -> NoReturn:
        _fail(message, code, kind=kind, exc=exc, as_json=as_json)

    try:
        default_plugins().add_commands(cli)
        code = cli.main(args=args, prog_name="offload", standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        fail(exc.format_message() + hint, exc.exit_code, "UsageError")
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code, type(exc).__name__)
    except (click.Abort, KeyboardInterrupt):
        fail("interrupted", 130, "Interrupted")
    except ConfigurationError as exc:
        fail(_cli_wording(exc), 2, type(exc).__name__, exc)
    except LocationNotAllowedError as exc:
        fail(
            f"refusing to read {exc.location!r}: it is not under a --store or --allow location; "
            "pass --allow with its store's URL if the sender is trusted",
            1,
            type(exc).__name__,
            exc,
        )
    except OffloadError as exc:
        fail(_cli_wording(exc), 1, type(exc).__name__, exc)
    except BrokenPipeError:
        # The reader went away (``offload ... | head``): stay quiet, like other tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        fail(str(exc), 1, type(exc).__name__, exc)
    except Exception as exc:
        setup = _aws_setup_problem(exc)
        if setup is None:
            raise
        fail(setup, 2, type(exc).__name__, exc)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(
    message: str, code: int, *, kind: str, exc: BaseException | None, as_json: bool
) -> NoReturn:
    """Say what went wrong on stderr: one line, or under ``--json`` one JSON object with the
    message, the error's type, the exit status and what the error carries (location,
    retryable)."""
    text = " ".join(message.split())
    if as_json:
        error: dict[str, Any] = {"error": text, "type": kind, "exit_status": code}
        if isinstance(exc, OffloadError):
            error["retryable"] = exc.retryable
        location = getattr(exc, "location", None)
        if isinstance(location, str):
            error["location"] = location
        click.echo(json.dumps(error), err=True)
    else:
        click.echo(f"offload: error: {text}", err=True)
    sys.exit(code)


#: Advice written for library callers, and what to do instead on the command line.
_LIBRARY_WORDS = (("pointer_format='native'", "--format native"),)
_NO_CREDENTIALS = frozenset({"NoCredentialsError", "PartialCredentialsError"})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, each once."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]


def _aws_setup_problem(exc: BaseException) -> str | None:
    """What to set when AWS credentials are missing or the profile does not exist, said with
    the command line's flags and environment variables (the AWS SDK's errors say neither)."""
    for cause in _causes(exc):
        names = {cls.__name__ for cls in type(cause).__mro__}
        if names & _NO_CREDENTIALS:
            location = getattr(exc, "location", None)
            where = f" for {location}" if isinstance(location, str) else ""
            return (
                f"no AWS credentials found{where}: pass --profile NAME or set AWS_PROFILE, or set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or run "
                "where an instance or task role provides them"
            )
        if "ProfileNotFound" in names:
            profile = getattr(cause, "kwargs", {}).get("profile", "?")
            return (
                f"the AWS profile {profile!r} is not in the AWS config or credentials file "
                "(~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE and "
                "AWS_SHARED_CREDENTIALS_FILE): check --profile and AWS_PROFILE"
            )
    return None


def _cli_wording(exc: OffloadError) -> str:
    """The error's message, its advice given in terms of the command line."""
    setup = _aws_setup_problem(exc)
    if setup is not None:
        return setup
    message = str(exc)
    for library, command_line in _LIBRARY_WORDS:
        message = message.replace(library, command_line)
    return message


if __name__ == "__main__":  # pragma: no cover
    main()

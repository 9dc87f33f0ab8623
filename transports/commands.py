"""Commands the built-in transports add to the ``offload`` command line."""

from __future__ import annotations

import sys

import click

from offload_core.cli import _print_json, _progress


@click.command()
@click.option(
    "--size",
    "size_mib",
    type=click.IntRange(1, 2048),
    default=200,
    show_default=True,
    help="Size of the largest payloads, in MiB (up to 2048: 2 GiB).",
)
@click.option(
    "--local",
    is_flag=True,
    help="Use a local directory and a 256 KiB limit instead of the embedded AWS (needs no moto).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def demo(size_mib: int, local: bool, as_json: bool) -> None:
    """Run the seed architecture on an embedded AWS (moto on 127.0.0.1).

    Application A (account A) publishes JSON and binary payloads through SNS and EventBridge;
    B (account B, queues in two regions) and C (a Lambda function in account C) resolve and
    verify them. Prints the accounts, resources and policies, a row per message and the checks;
    the exit status is 1 if any message or check failed.
    """
    from .demo import run_demo, run_local

    run = run_local if local else run_demo
    report = run(size_mib * 2**20, progress=_progress, echo=None if as_json else click.echo)
    if as_json:
        _print_json(report.to_json())
    if not report.ok:
        sys.exit(1)

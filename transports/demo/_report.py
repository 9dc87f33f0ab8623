"""What a demo run found, and how it is shown: the setup, a table row per message, checks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ._payloads import Payload

__all__ = [
    "Account",
    "Check",
    "Expected",
    "Report",
    "Resolution",
    "Resource",
    "Row",
    "Table",
    "setup_lines",
    "summary_lines",
]

_REFUSED_BY = "refused by "


@dataclass(frozen=True)
class Account:
    """An application's identity, as STS reports it."""

    label: str
    account_id: str
    arn: str
    role: str


@dataclass(frozen=True)
class Resource:
    """A queue, topic, bucket or bus of the run: its ARN or URL, owner, region and part."""

    kind: str
    name: str
    account: str
    region: str
    note: str = ""
    #: The resource policy as the service returned it after the demo set it, if any.
    policy: Mapping[str, Any] | None = None

    @property
    def placement(self) -> tuple[str, str] | None:
        """``(region, account id)`` from the resource's ARN; ``None`` for a URL."""
        parts = self.name.split(":")
        return (parts[3], parts[4]) if self.name.startswith("arn:") and len(parts) > 5 else None

    @property
    def short_name(self) -> str:
        """The name within its account: a queue's, a topic's, a bus's or a bucket's."""
        if self.name.startswith("s3://"):
            return self.name[5:].split("/", 1)[0]
        return self.name.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Expected:
    """What a consumer should get: a payload of this size and digest, or a refusal."""

    name: str
    size: int | None = None
    digest: str | None = None

    @property
    def refusal(self) -> bool:
        return self.digest is None

    def judge(
        self,
        consumer: str,
        seconds: float,
        size: int = 0,
        digest: str = "",
        *,
        refused: bool = False,
        error: str = "",
    ) -> Resolution:
        """The resolution of a consumer that got ``size`` bytes hashing to ``digest``, refused
        the pointer's location, or failed with ``error``."""
        if self.refusal:
            ok = refused
            detail = "" if ok else error or "the forged pointer was followed"
        elif refused or error:
            ok, detail = False, error or "refused the location of a genuine pointer"
        else:
            ok = size == self.size and digest == self.digest
            detail = "" if ok else f"got {size:,} bytes, sha256 {digest[:12]}..."
        return Resolution(consumer, ok, seconds, detail)


@dataclass(frozen=True)
class Resolution:
    """What one consumer made of one message: ``ok`` when it got the very bytes sent (or, for
    a forged pointer, refused it)."""

    consumer: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class Row:
    """One message of the run and what became of it."""

    name: str
    via: str
    size: int | None
    offloaded: bool
    stored_size: int | None
    codec: str
    pointer_format: str
    resolutions: tuple[Resolution, ...]
    seconds: float
    refusal: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.resolutions) and all(r.ok for r in self.resolutions)


@dataclass(frozen=True)
class Check:
    """A fact about the setup or the outcome that the run verified."""

    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    """Everything a run did and found; ``ok`` when every message and check passed."""

    title: str
    accounts: list[Account] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows) and all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        for row, data in zip(self.rows, out["rows"], strict=True):
            data["ok"] = row.ok
        return out


class Table:
    """The message table, its column widths fixed in advance so rows print as they finish."""

    HEADER = (
        "message",
        "via",
        "bytes",
        "sent as",
        "stored",
        "codec",
        "format",
        "resolved by",
        "sha256",
        "time",
    )

    def __init__(
        self, payloads: Sequence[Payload], vias: Sequence[str], consumers: Sequence[str]
    ) -> None:
        big = max((p.size for p in payloads), default=0)
        names = [p.name for p in payloads] + ["forged pointer"]
        self._widths = [
            max(len(n) for n in names),
            max(len(v) for v in vias),
            len(f"{big:,}"),
            len("pointer"),
            len(f"{big:,}"),
            len("codec"),
            len("native"),
            len(_REFUSED_BY + ", ".join(consumers)),
            len("verified"),
            len("000.0s"),
        ]

    def header(self) -> str:
        return self._line(self.HEADER)

    def line(self, row: Row) -> str:
        if row.refusal:
            check = "refused" if row.ok else "FAILED"
        else:
            check = "verified" if row.ok else "FAILED"
        cells = (
            row.name,
            row.via,
            f"{row.size:,}" if row.size is not None else "-",
            "-" if row.error else "pointer" if row.offloaded else "inline",
            f"{row.stored_size:,}" if row.stored_size is not None else "-",
            row.codec if row.offloaded else "-",
            row.pointer_format if row.offloaded else "-",
            (_REFUSED_BY if row.refusal else "")
            + (", ".join(r.consumer for r in row.resolutions if r.ok) or "nobody"),
            check,
            f"{row.seconds:.1f}s",
        )
        return self._line(cells)

    def _line(self, cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(w) if i in (2, 4, 9) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, self._widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    @staticmethod
    def problems(row: Row) -> Iterator[str]:
        """Lines saying what went wrong with a row, if anything."""
        if row.error:
            yield f"  {row.name} via {row.via}: {row.error}"
        for r in row.resolutions:
            if not r.ok:
                yield f"  {row.name} via {row.via}, {r.consumer}: {r.detail}"


def setup_lines(report: Report) -> Iterator[str]:
    """The accounts, resources and resource policies of a run, as text."""
    if report.accounts:
        yield "accounts (STS AssumeRole into each; moto keeps the accounts apart):"
        for a in report.accounts:
            yield f"  {a.label}  {a.account_id}  {a.arn}"
            yield f"  {'':<{len(a.label)}}  {'':<{len(a.account_id)}}  {a.role}"
    if report.resources:
        yield "resources (kind, owner, region):"
        for r in report.resources:
            yield f"  {r.kind:<6} {r.account}  {r.region:<9}  {r.name}"
            if r.note:
                yield f"  {'':<6} {'':<{len(r.account)}}  {'':<9}  {r.note}"
    policies = [r for r in report.resources if r.policy]
    if policies:
        yield "resource policies, as moto returns them:"
        for r in policies:
            yield f"  {r.kind} {r.short_name} ({r.account}, {r.region}):"
            for statement in (r.policy or {}).get("Statement", []):
                yield f"    {_statement(statement)}"


def _statement(statement: Mapping[str, Any]) -> str:
    principal = statement.get("Principal", "*")
    if isinstance(principal, Mapping):
        principal = next(iter(principal.values()), "*")
    who = ", ".join(_short(p) for p in _listed(principal))
    actions = ", ".join(_listed(statement.get("Action", [])))
    text = f"{statement.get('Sid', '-')}: {statement.get('Effect')} {who}: {actions}"
    for test, pairs in (statement.get("Condition") or {}).items():
        for key, value in pairs.items():
            text += f" if {key} {test} {', '.join(_short(v) for v in _listed(value))}"
    return text


def _listed(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _short(principal: str) -> str:
    """``arn:aws:iam::111111111111:root`` as the account id alone."""
    if principal.startswith("arn:") and principal.endswith(":root"):
        return principal.split(":")[4]
    return principal


def summary_lines(report: Report) -> Iterator[str]:
    """The checks, the notes and the verdict, as text."""
    for row in report.rows:
        yield from Table.problems(row)
    if report.checks:
        yield "checks:"
        for c in report.checks:
            yield f"  [{'ok' if c.ok else 'FAILED'}] {c.name}: {c.detail}"
    if report.notes:
        yield "what moto does not do, and what the demo does about it:"
        for note in report.notes:
            yield f"  - {note}"
    rows = [r for r in report.rows if not r.ok]
    checks = [c for c in report.checks if not c.ok]
    counts = f"{_count(len(report.rows), 'message')} and {_count(len(report.checks), 'check')}"
    if rows or checks:
        yield (
            f"FAILED: {_count(len(rows), 'message')} and {_count(len(checks), 'check')} of "
            f"{counts} failed"
        )
    else:
        yield f"ok: {counts}, all as expected"


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"

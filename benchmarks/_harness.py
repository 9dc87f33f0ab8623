"""Every benchmark scenario side by side in one run: the engine behind ``run.py``.

The scenarios themselves live in :mod:`pipeline_bench`, :mod:`s3_bench`, :mod:`sqs_bench`,
:mod:`sns_bench` and :mod:`aio_bench`; each runs in a subprocess of its own and measures its
timed part and the peak RSS of that process over its RSS just before. This module decides what
runs (a :class:`Plan`), writes the payload files once for every suite, runs the scenarios of one
table and size in a new order every round, and sums the runs up: fastest and median time, MB/s,
the highest peak, and ratios against a baseline of the same table, size and data, measured in
the same rounds.
"""

from __future__ import annotations

import functools
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aio_bench
import pipeline_bench
import s3_bench
import sns_bench
import sqs_bench
from shaper import CONTROL_ENV

KIB, MIB, GIB = 1024, 1024**2, 1024**3
REGION = "us-east-1"
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class S3Config:
    """One endpoint and request-signing setting of the S3 suite, and the sizes it runs."""

    endpoint: str  # "moto" or "local" (benchmarks/local_s3.py)
    unsigned: bool
    sizes: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{self.endpoint}, body SHA-256 {'off' if self.unsigned else 'on'}"


@dataclass(frozen=True)
class Network:
    """A network profile: what ``shaper.py`` puts in front of every endpoint, per connection
    and direction."""

    name: str
    rate_mb: float
    rtt_ms: float

    @property
    def label(self) -> str:
        return f"{self.name} ({self.rate_mb:g} MB/s per connection, {self.rtt_ms:g} ms RTT)"


#: The shaped profiles; ``loopback`` is no profile (127.0.0.1 as it is).
NETWORKS = {
    "same-region": Network("same-region", 90, 2),
    "cross-region": Network("cross-region", 50, 70),
}
PROFILES = ("loopback", *NETWORKS)


#: The suites a plan can run (``run.py --only``), in the order they run behind a profile.
SUITES = ("pipeline", "s3", "sqs", "sns", "asyncio")


@dataclass(frozen=True)
class Aio:
    """What the asyncio suite (:mod:`aio_bench`) runs behind every profile: ``sends`` 1 KiB
    sends per client and run; one consumer of each face on ``messages`` stored payloads of
    ``message_size`` bytes (``concurrency`` in flight on the asynchronous one); and
    ``resolves`` payloads of ``resolve_size`` read at once on one event loop."""

    sends: int
    messages: int
    message_size: int
    resolves: int
    resolve_size: int
    concurrency: int = aio_bench.CONCURRENCY


@dataclass(frozen=True)
class Shaped:
    """What runs behind one network profile: the S3 suite on the local endpoint (bodies
    unsigned, as over HTTPS), and SQS on moto with its payloads on the local endpoint."""

    s3_sizes: tuple[int, ...]
    sqs_sizes: tuple[int, ...]
    #: 300 KB round trips per client and run (their median is the run's figure).
    latency_count: int
    #: 1 KiB sends per client and run.
    send_count: int = 50
    #: Whether the asyncio suite runs behind this profile.
    aio: bool = True


@dataclass(frozen=True)
class Plan:
    """What one run measures. Sizes are bytes; ``repeat`` runs per scenario below ``big``,
    ``big_repeat`` from there up."""

    name: str
    repeat: int
    big_repeat: int
    pipeline_sizes: tuple[int, ...]
    s3: tuple[S3Config, ...]
    sqs_sizes: tuple[int, ...]
    sns_sizes: tuple[int, ...]
    #: 1 KiB sends (or publishes) per client and run.
    send_count: int
    #: Options of our store in the SQS and SNS suites (moto re-reads a whole object for every
    #: ranged GET, so one GetObject stream is the fair comparison with the official clients).
    store_options: dict[str, Any] = field(default_factory=lambda: {"read_concurrency": 1})
    #: What the plan leaves out, and why.
    notes: tuple[str, ...] = ()
    big: int = GIB
    #: The profiles run, in order, and what runs behind each shaped one.
    networks: tuple[str, ...] = ("loopback",)
    shaped: dict[str, Shaped] = field(default_factory=dict)
    #: The asyncio suite's sizes.
    aio: Aio = Aio(sends=300, messages=200, message_size=MIB, resolves=100, resolve_size=10 * MIB)
    #: The suites run (:data:`SUITES`); every one if empty.
    only: tuple[str, ...] = ()

    def runs(self, suite: str) -> bool:
        """Whether this plan runs ``suite``."""
        return not self.only or suite in self.only

    def repeats(self, size: int) -> int:
        return self.repeat if size < self.big else self.big_repeat

    def capped(
        self, max_size: int | None, repeat: int | None = None, count: int | None = None
    ) -> Plan:
        """This plan without sizes over ``max_size`` (the cap itself where none is left),
        with ``repeat`` runs at every size and ``count`` 1 KiB sends, where given."""

        def cap(sizes: tuple[int, ...]) -> tuple[int, ...]:
            if max_size is None:
                return sizes
            return tuple(s for s in sizes if s <= max_size) or (max_size,)

        notes = self.notes
        every = [*self.pipeline_sizes, *self.sqs_sizes, *self.sns_sizes]
        every += [size for config in self.s3 for size in config.sizes]
        every += [size for s in self.shaped.values() for size in (*s.s3_sizes, *s.sqs_sizes)]
        every += [self.aio.message_size, self.aio.resolve_size]
        if max_size is not None and max(every) > max_size:
            notes += (f"sizes over {size_label(max_size)} (`--max-size`)",)
        return replace(
            self,
            notes=notes,
            repeat=repeat or self.repeat,
            big_repeat=repeat or self.big_repeat,
            pipeline_sizes=cap(self.pipeline_sizes),
            s3=tuple(replace(c, sizes=cap(c.sizes)) for c in self.s3),
            sqs_sizes=cap(self.sqs_sizes),
            sns_sizes=cap(self.sns_sizes),
            send_count=count or self.send_count,
            aio=replace(
                self.aio,
                sends=count or self.aio.sends,
                message_size=cap((self.aio.message_size,))[0],
                resolve_size=cap((self.aio.resolve_size,))[0],
            ),
            shaped={
                name: replace(
                    s,
                    s3_sizes=cap(s.s3_sizes),
                    sqs_sizes=cap(s.sqs_sizes),
                    send_count=count or s.send_count,
                )
                for name, s in self.shaped.items()
            },
        )

    def on(self, networks: tuple[str, ...]) -> Plan:
        """This plan run behind ``networks`` (names of :data:`PROFILES`), in that order."""
        return replace(self, networks=networks)

    def restricted(self, suites: tuple[str, ...]) -> Plan:
        """This plan running only ``suites`` (names of :data:`SUITES`; all if empty)."""
        return replace(self, only=tuple(s for s in SUITES if s in suites))


QUICK = Plan(
    name="quick",
    repeat=2,
    big_repeat=1,
    pipeline_sizes=(KIB, MIB, 16 * MIB, 64 * MIB),
    s3=(S3Config("moto", False, (MIB, 16 * MIB)), S3Config("local", True, (16 * MIB,))),
    sqs_sizes=(MIB, 10 * MIB),
    sns_sizes=(10 * MIB,),
    send_count=50,
    notes=(
        "the quick plan stops at 64 MiB (pipeline), 16 MiB (S3) and 10 MiB (SQS, SNS) on "
        "loopback, at 64 MiB (S3) and 100 MiB (SQS) behind a network profile; without "
        "`--quick` the run goes to 1 GiB and 2 GiB",
        "the quick plan's asyncio suite consumes 20 messages of 1 MiB (200 without `--quick`) "
        "and resolves 10 payloads of 2 MiB at once (100 of 10 MiB), on loopback and "
        "same-region, not cross-region",
    ),
    shaped={
        "same-region": Shaped((64 * MIB,), (10 * MIB, 100 * MIB), latency_count=25),
        "cross-region": Shaped((64 * MIB,), (10 * MIB, 100 * MIB), 10, send_count=20, aio=False),
    },
    aio=Aio(sends=50, messages=20, message_size=MIB, resolves=10, resolve_size=2 * MIB),
)
#: About a quarter of an hour on two shared cores: up to 1 GiB, no 2 GiB.
FULL = Plan(
    name="full",
    repeat=3,
    big_repeat=2,
    big=256 * MIB,
    pipeline_sizes=(KIB, MIB, 16 * MIB, 256 * MIB, GIB),
    s3=(
        S3Config("moto", False, (16 * MIB, 256 * MIB)),
        S3Config("local", False, (256 * MIB,)),
        S3Config("local", True, (256 * MIB,)),
    ),
    sqs_sizes=(10 * MIB, 100 * MIB, GIB),
    sns_sizes=(10 * MIB, 100 * MIB),
    send_count=300,
    shaped={
        "same-region": Shaped((256 * MIB, 2 * GIB), (10 * MIB, 100 * MIB, GIB), 50),
        "cross-region": Shaped((256 * MIB,), (10 * MIB, 100 * MIB), 25, send_count=30),
    },
    notes=(
        "2 GiB (S3 on moto: about 4 minutes a repeat, as moto holds every request in memory "
        "and s3fs alone takes 90 s; on the local endpoint about 3 minutes; the pipeline about "
        "2 minutes) and SNS at 1 GiB: `--complete` runs them, in about half an hour",
    ),
)
#: Every size the issues name, 2 GiB included; about half an hour.
COMPLETE = replace(
    FULL,
    name="complete",
    big=GIB,
    pipeline_sizes=(*FULL.pipeline_sizes, 2 * GIB),
    s3=(
        S3Config("moto", False, (16 * MIB, 256 * MIB, 2 * GIB)),
        S3Config("local", False, (256 * MIB,)),
        S3Config("local", True, (16 * MIB, 256 * MIB, 2 * GIB)),
    ),
    sns_sizes=(10 * MIB, 100 * MIB, GIB),
    notes=(),
)
PLANS = {"quick": QUICK, "full": FULL, "complete": COMPLETE}


@dataclass
class Row:
    """One scenario at one size in one table, and its runs."""

    suite: str
    table: str
    scenario: str
    size: int
    data: str
    client: str
    #: The network profile the row ran behind (:data:`PROFILES`).
    network: str = "loopback"
    io: str = "file"
    compression: str = "none"
    checksum: str = "-"
    #: Scenarios of the same table, size and data whose fastest is this row's baseline.
    baselines: tuple[str, ...] = ()
    #: How the scenario ran beyond the fields above: endpoint, reads, store options, and with
    #: zstd its level and worker threads (``{"zstd": {"level": 1, "threads": 2}}``).
    config: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def group(self) -> tuple[str, int, str]:
        return self.table, self.size, self.data

    def seconds(self) -> list[float]:
        return [float(r["seconds"]) for r in self.runs]


@dataclass
class Job:
    """One subprocess: it fills one run of each row it names."""

    label: str
    rows: dict[str, Row]
    run: Callable[[], dict[str, dict[str, Any]]]


class Payloads:
    """Payload files by kind and size, written once per run and shared by the suites."""

    MAKERS: dict[str, Callable[[Path, int], None]] = {
        "json": pipeline_bench.make_json_like,  # JSON records, ~0.32 after zstd -3
        "random": pipeline_bench.make_random,  # incompressible bytes
        "text": s3_bench.make_payload,  # random base64 text, valid for every AWS client
    }

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def get(self, kind: str, size: int) -> Path:
        path = self.root / f"{kind}-{size}"
        if not path.exists():
            self.MAKERS[kind](path, size)
        return path


class Harness:
    """Runs a :class:`Plan` in ``workdir`` (payloads, outputs, the local S3 endpoint's files)."""

    def __init__(
        self, plan: Plan, workdir: Path, seed: int = 0, log: Callable[[str], None] | None = None
    ) -> None:
        self.plan = plan
        self.workdir = workdir
        self.payloads = Payloads(workdir / "payloads")
        self.rows: list[Row] = []
        self.skipped: list[dict[str, Any]] = []
        self._rng = random.Random(seed)
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._start = time.monotonic()
        self.network = "loopback"
        #: The shaper in front of the endpoints while a network profile runs.
        self.shaper: Shaper | None = None

    def log(self, line: str) -> None:
        self._log(f"[{time.monotonic() - self._start:6.0f} s] {line}")

    def run(self) -> list[Row]:
        for network in self.plan.networks:
            self.network = network
            if network == "loopback":
                self.loopback()
            else:
                self.shaped(NETWORKS[network], self.plan.shaped[network])
        return self.rows

    def loopback(self) -> None:
        """Every suite on 127.0.0.1 as it is: CPU-bound comparisons."""
        plan = self.plan
        if plan.runs("pipeline"):
            self.pipeline()
        if not any(plan.runs(suite) for suite in ("s3", "sqs", "sns", "asyncio")):
            return
        moto = s3_bench.Endpoint("moto", self.workdir)
        try:
            if plan.runs("s3"):
                self.s3(moto)
            if plan.runs("sqs"):
                self.sqs(moto.url)
            if plan.runs("sns"):
                self.sns(moto.url)
            if plan.runs("asyncio"):
                self.aio(moto.url)
        finally:
            moto.close()

    def shaped(self, network: Network, sizes: Shaped) -> None:
        """The S3, SQS and asyncio suites behind ``network``: S3 on the local endpoint (which
        serves ranged GETs without re-reading the object), SQS on moto, both through one
        shaper."""
        plan = self.plan
        aio = sizes.aio and plan.runs("asyncio")
        if not (plan.runs("s3") or plan.runs("sqs") or aio):
            return
        local = s3_bench.Endpoint("local", self.workdir)
        moto = s3_bench.Endpoint("moto-keepalive", self.workdir)
        self.shaper = Shaper(network, [local.url, moto.url])
        os.environ[CONTROL_ENV] = self.shaper.control  # the children count their timed part
        try:
            s3_url, aws_url = self.shaper.listeners
            self.log(f"{network.label}: S3 {s3_url}, SQS {aws_url}")
            if plan.runs("s3"):
                self.s3_shaped(s3_url, network, sizes.s3_sizes)
            if plan.runs("sqs"):
                self.sqs(aws_url, s3_url=s3_url, sizes=sizes, label=network.label)
            if aio:
                self.aio(aws_url, s3_url=s3_url, label=network.label)
        finally:
            os.environ.pop(CONTROL_ENV, None)
            self.shaper.close()
            self.shaper = None
            moto.close()
            local.close()

    # -- running ---------------------------------------------------------------------------

    def row(self, **fields: Any) -> Row:
        row = Row(**fields, network=self.network)
        self.rows.append(row)
        return row

    def _asyncio_row(
        self, table: str, scenario: str, size: int, baseline: str, config: dict[str, Any]
    ) -> Row:
        """A row of the asyncio suite: random payloads, sha256, against ``baseline``."""
        return self.row(
            suite="asyncio",
            table=table,
            scenario=scenario,
            size=size,
            data="random",
            client="offload",
            io="bytes",
            checksum="sha256",
            baselines=(baseline,),
            config=config,
        )

    def run_jobs(self, jobs: list[Job], repeat: int) -> None:
        """``repeat`` rounds of ``jobs``, in a new order every round, so that no scenario always
        follows the same one (what one run leaves behind slows the next on a shared machine)."""
        for _ in range(repeat):
            order = list(jobs)
            self._rng.shuffle(order)
            for job in order:
                started = time.perf_counter()
                before = self.shaper.stats() if self.shaper else None
                try:
                    results = job.run()
                except Exception as exc:  # a failed scenario is reported, the run goes on
                    message = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
                    for row in job.rows.values():
                        row.errors.append(message)
                    self.log(f"{job.label}: FAILED: {message}")
                    continue
                process = time.perf_counter() - started
                if self.shaper and before and len(results) == 1:
                    # The whole process's traffic, where the child did not count its timed part.
                    after = self.shaper.stats()
                    (figures,) = results.values()
                    figures.setdefault("wire_up", after["up"] - before["up"])
                    figures.setdefault("wire_down", after["down"] - before["down"])
                    cpu = after["cpu_seconds"] - before["cpu_seconds"]
                    figures.setdefault("shaper_cpu_seconds", cpu)
                    figures["connections"] = after["connections"] - before["connections"]
                for name, figures in results.items():
                    job.rows[name].runs.append({**figures, "process_seconds": process})
                    suffix = f" ({name})" if len(job.rows) > 1 else ""
                    self.log(f"{job.label}{suffix}: {_brief(figures)}")

    # -- suites ----------------------------------------------------------------------------

    def pipeline(self) -> None:
        """Issue 3: the core pipeline and the Offloader over the local store vs a plain copy."""
        workdir = self.workdir / "pipeline"
        workdir.mkdir(exist_ok=True)
        for size in self.plan.pipeline_sizes:
            jobs = []
            for scenario, data, checksum in pipeline_bench.SCENARIOS:
                name = PIPELINE_NAMES[scenario].format(checksum=checksum)
                row = self.row(
                    suite="pipeline",
                    table="Core pipeline, local files (file in, file out)",
                    scenario=name,
                    size=size,
                    data=data,
                    client="offload" if scenario in ("none", "zstd", "offloader") else scenario,
                    compression="zstd" if scenario == "zstd" else "none",
                    checksum=checksum,
                    baselines=("plain copy",),
                    config={"zstd": zstd_settings({})} if scenario == "zstd" else {},
                )
                source = self.payloads.get(data, size)
                run = functools.partial(_pipeline_run, scenario, checksum, source, workdir, name)
                jobs.append(Job(f"pipeline {size_label(size)} {data} {name}", {name: row}, run))
            self.run_jobs(jobs, self.plan.repeats(size))

    def s3(self, moto: s3_bench.Endpoint) -> None:
        """Issue 4: the S3 store and the Offloader on it vs raw boto3 and s3fs, per endpoint."""
        boto3_names = tuple(n for n, _ in s3_bench.SCENARIOS if n.startswith("boto3"))
        for config in self.plan.s3:
            endpoint = moto if config.endpoint == "moto" else None
            endpoint = endpoint or s3_bench.Endpoint(config.endpoint, self.workdir)
            try:
                for size in config.sizes:
                    source = self.payloads.get("text", size)
                    target = self.workdir / "s3-download"
                    jobs = []
                    for name, ranged in s3_bench.SCENARIOS:
                        reason = s3_bench.skipped(endpoint, name, ranged, size)
                        if reason is not None:
                            if reason:
                                self.skipped.append(
                                    {"table": f"S3 {config.label}", "scenario": name}
                                    | {"size": size, "reason": reason}
                                )
                            continue
                        row = self.row(
                            suite="s3",
                            table=f"S3 upload + download, {config.label}",
                            scenario=name,
                            size=size,
                            data="text",
                            client=name.split()[0].replace("store", "offload"),
                            checksum="sha256" if name.startswith("offload") else "-",
                            baselines=boto3_names,
                            config={
                                "endpoint": config.endpoint,
                                "body_sha256": not config.unsigned,
                                "reads": "ranged" if ranged else "stream",
                            },
                        )
                        run = functools.partial(
                            _s3_run, name, endpoint.url, source, target, config.unsigned
                        )
                        label = f"s3 {config.label} {size_label(size)} {name}"
                        jobs.append(Job(label, {name: row}, run))
                    self.run_jobs(jobs, self.plan.repeats(size))
            finally:
                if endpoint is not moto:
                    endpoint.close()

    def s3_shaped(self, url: str, network: Network, sizes: tuple[int, ...]) -> None:
        """Offload on the S3 store at its defaults vs raw boto3 and the transfer manager, on
        incompressible and JSON data, behind ``network`` (bodies unsigned, as over HTTPS)."""
        table = f"S3 upload + download, {network.label}"
        baselines = {"random": ("boto3 transfer",), "json": ("boto3 transfer",)}
        for size in sizes:
            jobs = []
            for name, data in s3_bench.SHAPED_SCENARIOS:
                compression = "zstd" if "zstd" in name else "none"
                config: dict[str, Any] = {
                    "endpoint": "local",
                    "body_sha256": False,
                    "reads": "ranged" if name != "boto3 object" else "stream",
                }
                if compression == "zstd":
                    config["zstd"] = zstd_settings({})
                row = self.row(
                    suite="s3",
                    table=table,
                    scenario=name,
                    size=size,
                    data=data,
                    client=name.split()[0],
                    compression=compression,
                    checksum="sha256" if name.startswith("offload") else "-",
                    baselines=baselines[data],
                    config=config,
                )
                source = self.payloads.get(data, size)
                target = self.workdir / "s3-download"
                run = functools.partial(_s3_run, name, url, source, target, True)
                label = f"s3 {network.name} {size_label(size)} {data} {name}"
                jobs.append(Job(label, {name: row}, run))
            self.run_jobs(jobs, self.plan.repeats(size))

    def _aws(self, url: str, service: str) -> Any:
        import boto3

        credentials = s3_bench.CREDENTIALS
        return boto3.client(service, endpoint_url=url, region_name=REGION, **credentials)

    def _messaging(
        self, suite: str, url: str, s3_url: str | None = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """The children's environment and the configuration they share, with a new bucket.
        With ``s3_url`` (a network profile) S3 goes there, every client's bodies unsigned, and
        our store runs at its defaults."""
        bucket = f"{suite}-bench-{uuid.uuid4().hex[:8]}"
        self._aws(s3_url or url, "s3").create_bucket(Bucket=bucket)
        if s3_url is None:
            storage = {**s3_bench._storage_options(url, False), **self.plan.store_options}
            env = sqs_bench.aws_env(url, REGION, s3_bench.CREDENTIALS)
        else:
            storage = s3_bench._storage_options(s3_url, True)
            config = sqs_bench.unsigned_config(self.workdir / "aws-config")
            env = sqs_bench.aws_env(
                url, REGION, s3_bench.CREDENTIALS, s3_endpoint=s3_url, config_file=config
            )
        return env, {"bucket": bucket, "storage": storage, "workdir": str(self.workdir)}

    def sqs(
        self, url: str, s3_url: str | None = None, sizes: Shaped | None = None, label: str = ""
    ) -> None:
        """Issue 5: SQS sends of 1 KiB vs raw boto3; large round trips vs the official client;
        behind a network profile (``s3_url``, ``sizes``, ``label``) also 300 KB round trips."""
        env, base = self._messaging("sqs", url, s3_url)
        client = self._aws(url, "sqs")
        count = sizes.send_count if sizes else self.plan.send_count

        def small(which: str) -> dict[str, dict[str, Any]]:
            cfg = {**base, "client": which, "queue": sqs_bench.new_queue(client)}
            cfg |= {"count": count, "warmup": 20}
            return _sends(sqs_bench.run_child("small", cfg, env))

        def large(client_name: str, io: str, source: Path) -> dict[str, dict[str, Any]]:
            cfg = {**base, "client": client_name, "io": io, "source": str(source)}
            cfg["queue"] = sqs_bench.new_queue(client)
            return {"": _message_figures(sqs_bench.run_child("large", cfg, env))}

        large_sizes = sizes.sqs_sizes if sizes else self.plan.sqs_sizes
        self._messaging_suite("sqs", "SQS", small, large, sqs_bench.LARGE, large_sizes, label)
        if sizes is None:
            return
        table = f"SQS 300 KB round trip (send, receive, read, delete), {label}"
        rows = {
            name: self.row(
                suite="sqs",
                table=table,
                scenario=scenario,
                size=sqs_bench.LATENCY_SIZE,
                data="text",
                client=name,
                checksum="-" if name == "official" else "sha256",
                baselines=("official SQS extended client",),
                config={"round_trips": sizes.latency_count},
            )
            for name, scenario in (
                ("official", "official SQS extended client"),
                ("offload", "ours"),
            )
        }

        def latency(which: str) -> dict[str, dict[str, Any]]:
            cfg = {**base, "client": which, "queue": sqs_bench.new_queue(client)}
            cfg |= {"count": sizes.latency_count, "warmup": 3}
            r = sqs_bench.run_child("latency", cfg, env)
            return {"": {"seconds": r["seconds"], "p90": r["p90"], "peak_rss_mib": r["peak_mib"]}}

        jobs = [
            Job(
                f"sqs 300 KB {name}",
                {"": row},
                functools.partial(latency, "ours" if name == "offload" else name),
            )
            for name, row in rows.items()
        ]
        self.run_jobs(jobs, self.plan.repeat)

    def sns(self, url: str) -> None:
        """SNS publishes of 1 KiB vs raw boto3; large publishes vs the official SNS client."""
        env, base = self._messaging("sns", url)
        topic = self._aws(url, "sns").create_topic(Name=f"bench-{uuid.uuid4().hex[:8]}")
        base["topic"] = topic["TopicArn"]

        def small(which: str) -> dict[str, dict[str, Any]]:
            cfg = {**base, "client": which, "count": self.plan.send_count, "warmup": 20}
            return _sends(sns_bench.run_child("small", cfg, env))

        def large(client_name: str, io: str, source: Path) -> dict[str, dict[str, Any]]:
            cfg = {**base, "client": client_name, "io": io, "source": str(source)}
            return {"": _message_figures(sns_bench.run_child("large", cfg, env))}

        self._messaging_suite("sns", "SNS", small, large, sns_bench.LARGE, self.plan.sns_sizes)

    def aio(self, url: str, s3_url: str | None = None, label: str = "") -> None:
        """The asyncio face: 1 KiB sends of :class:`AsyncSqsTransport` vs raw aiobotocore; the
        asynchronous consumer loop vs the synchronous consumer on stored payloads; many
        concurrent resolves on one event loop vs one after another (:mod:`aio_bench`)."""
        env, base = self._messaging("aio", url, s3_url)
        sqs = self._aws(url, "sqs")
        plan = self.plan.aio
        where = f", {label}" if label else ""

        table = f"asyncio: SQS send, 1 KiB message{where}"
        common: dict[str, Any] = {"suite": "asyncio", "table": table, "size": KIB, "data": "text"}
        common |= {"io": "str", "config": {"kind": "send"}, "baselines": ("raw aiobotocore",)}
        send_rows = {
            "raw": self.row(**common, scenario="raw aiobotocore", client="aiobotocore"),
            "ours": self.row(**common, scenario="ours", client="offload"),
        }

        def send() -> dict[str, dict[str, Any]]:
            cfg = {**base, "queue": sqs_bench.new_queue(sqs), "count": plan.sends, "warmup": 20}
            try:
                return _sends(aio_bench.run_child("sends", cfg, env))
            finally:
                sqs.delete_queue(QueueUrl=cfg["queue"])

        self.run_jobs(
            [Job("asyncio 1 KiB raw aiobotocore + ours", send_rows, send)], self.plan.repeat
        )

        messages, size = plan.messages, plan.message_size
        table = f"asyncio: SQS consumer, {messages} messages of {size_label(size)}{where}"
        consumers = {
            "sync": "sync SqsTransport, batches of 10",
            "async": f"async consume(), {plan.concurrency} in flight",
        }
        config = {"kind": "consume", "messages": messages, "message_size": size}
        jobs = []
        for client, scenario in consumers.items():
            extra = {"concurrency": plan.concurrency} if client == "async" else {}
            row = self._asyncio_row(
                table, scenario, messages * size, consumers["sync"], config | extra
            )
            cfg = {**base, "client": client, "count": messages, "size": size}
            cfg |= {"warmup": aio_bench.CONSUMER_WARMUP, "concurrency": plan.concurrency}
            run = functools.partial(_consume, cfg, sqs, env)
            jobs.append(Job(f"asyncio consumer {client}", {"": row}, run))
        self.run_jobs(jobs, self.plan.repeat)

        count, size = plan.resolves, plan.resolve_size
        table = f"asyncio: {count} resolves of {size_label(size)} at once{where}"
        readers = {
            "sync": "sync read_pointer, one after another",
            "async": "async read_pointer, all at once (asyncio.gather)",
        }
        cfg = {**base, "count": count, "size": size}
        cfg["pointers"] = str(self.workdir / f"pointers-{uuid.uuid4().hex[:8]}.json")
        jobs = []
        for client, scenario in readers.items():
            config = {"kind": "resolve", "payloads": count, "payload_size": size}
            row = self._asyncio_row(table, scenario, count * size, readers["sync"], config)
            run = functools.partial(_resolve, {**cfg, "client": client}, env)
            jobs.append(Job(f"asyncio resolves {client}", {"": row}, run))
        try:
            aio_bench.run_child("store", cfg, env)
            self.run_jobs(jobs, self.plan.repeat)
        finally:
            aio_bench.run_child("clean", cfg, env)

    def _messaging_suite(
        self,
        suite: str,
        service: str,
        small: Callable[[str], dict[str, dict[str, Any]]],
        large: Callable[[str, str, Path], dict[str, dict[str, Any]]],
        scenarios: tuple[tuple[str, str, str, str], ...],
        sizes: tuple[int, ...],
        label: str = "",
    ) -> None:
        verb = "send" if suite == "sqs" else "publish"
        where = f", {label}" if label else ""
        table = f"{service} {verb}, 1 KiB message{where}"
        common = {"suite": suite, "table": table, "size": KIB, "data": "text", "io": "str"}
        rows = {
            name: self.row(**common, scenario=name, client=client, baselines=("raw boto3",))
            for name, client in (
                ("raw boto3", "boto3"),
                ("ours", "offload"),
                (f"official {service} extended client", "official"),
            )
        }
        ours = Job(
            f"{suite} 1 KiB raw boto3 + ours",
            {"raw": rows["raw boto3"], "ours": rows["ours"]},
            functools.partial(small, "ours"),
        )
        official = Job(
            f"{suite} 1 KiB official",
            {"official": rows[f"official {service} extended client"]},
            functools.partial(small, "official"),
        )
        self.run_jobs([ours, official], self.plan.repeat)

        what = "send + receive + delete" if suite == "sqs" else "publish (store + publish)"
        for size in sizes:
            jobs = []
            for label, data, client_name, io in scenarios:
                # SNS's "ours-zstd" compresses as SQS's does: zstd at the codec's defaults.
                compression, options = sqs_bench.OURS.get(client_name, (None, {}))
                store_options = {} if label else self.plan.store_options
                config: dict[str, Any] = {"store_options": store_options}
                if compression == "zstd":
                    config["zstd"] = zstd_settings(options)
                row = self.row(
                    suite=suite,
                    table=f"{service} {what}{where}",
                    scenario=label,
                    size=size,
                    data=data,
                    client="official" if client_name == "official" else "offload",
                    io=io,
                    compression=compression or "none",
                    checksum="-" if client_name == "official" else "sha256",
                    baselines=("official",),
                    config=config,
                )
                source = self.payloads.get(data, size)
                run = functools.partial(large, client_name, io, source)
                jobs.append(Job(f"{suite} {size_label(size)} {data} {label}", {"": row}, run))
            self.run_jobs(jobs, self.plan.repeats(size))


class Shaper:
    """``shaper.py`` in a process of its own in front of ``upstreams``; :attr:`listeners` are
    their shaped URLs, in the same order."""

    def __init__(self, network: Network, upstreams: list[str]) -> None:
        command = [sys.executable, str(HERE / "shaper.py"), *upstreams]
        command += ["--rate-mb", str(network.rate_mb), "--rtt-ms", str(network.rtt_ms)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the shaper did not start")
        started = json.loads(line)
        self.listeners: list[str] = started["listeners"]
        #: ``host:port`` where a measured child reads the counters (``shaper.Wire``).
        self.control: str = started["control"]

    def stats(self) -> dict[str, Any]:
        """Bytes delivered each way, connections opened and the shaper's CPU seconds so far."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write("stats\n")
        self._process.stdin.flush()
        return dict(json.loads(self._process.stdout.readline()))

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


#: Row names of pipeline_bench's scenarios.
PIPELINE_NAMES = {
    "copy": "plain copy",
    "hash": "{checksum} alone, twice over",
    "none": "pipeline, {checksum}",
    "offloader": "Offloader, local store, {checksum}",
    "zstd": "pipeline + zstd, {checksum}",
}


def zstd_settings(options: dict[str, Any]) -> dict[str, int]:
    """The level and worker threads (0: none, on the caller's thread) of a
    :class:`~offload_core.codecs.ZstdCodec` made with ``options``, for a row's ``config``."""
    from offload_core.codecs import ZstdCodec

    codec = ZstdCodec(**options)
    return {"level": codec.level, "threads": codec.threads}


def _pipeline_run(
    scenario: str, checksum: str, source: Path, workdir: Path, name: str
) -> dict[str, dict[str, Any]]:
    r = pipeline_bench.run_child(scenario, checksum, source, workdir)
    figures = {"seconds": r["seconds"], "peak_rss_mib": r["peak_rss_over_idle_mib"]}
    if scenario not in ("copy", "hash"):
        figures |= {"stored_as": r["codec"], "stored_ratio": r.get("stored_ratio", 1.0)}
    return {name: figures}


def _s3_run(
    name: str, url: str, source: Path, target: Path, unsigned: bool
) -> dict[str, dict[str, Any]]:
    r = s3_bench.run_child(name, url, source, target, unsigned)
    size = source.stat().st_size
    figures = {
        "seconds": r["up_s"] + r["down_s"],
        "peak_rss_mib": max(r["up_rss"], r["down_rss"]) / MIB,
        "up_mb_s": size / r["up_s"] / 1e6,
        "down_mb_s": size / r["down_s"] / 1e6,
        "up_rss_mib": r["up_rss"] / MIB,
        "down_rss_mib": r["down_rss"] / MIB,
    }
    if "codec" in r:  # the Offloader's rows: what it stored
        figures |= {"stored_as": r["codec"], "stored_ratio": r["stored_ratio"]}
    return {name: figures | _wire(r)}


def _wire(r: dict[str, Any]) -> dict[str, Any]:
    """What the shaper moved during a child's timed part, where the child counted it."""
    counted = {k: r[k] for k in ("wire_up", "wire_down", "shaper_cpu_seconds") if k in r}
    return counted | {"wire_timed": True} if counted else {}


def _sends(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A 1 KiB child's medians as runs of its rows (raw and ours share one process)."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("raw", "ours", "official"):
        if name in r:
            out[name] = {"seconds": r[name], "peak_rss_mib": r["peak_mib"]}
    if "ours" in out:
        out["ours"]["stored"] = r.get("stored", 0)
    return out


def _consume(cfg: dict[str, Any], sqs: Any, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """One consumer's run on a new queue, filled first in a process of its own."""
    queue = sqs_bench.new_queue(sqs)
    try:
        fill = {**cfg, "queue": queue, "count": cfg["count"] + cfg["warmup"]}
        filled = aio_bench.run_child("fill", fill, env)
        r = aio_bench.run_child("consume", {**cfg, "queue": queue}, env)
    finally:
        sqs.delete_queue(QueueUrl=queue)
    figures = {"seconds": r["seconds"], "peak_rss_mib": r["peak_mib"]}
    figures |= {"messages_per_s": cfg["count"] / r["seconds"], "fill_seconds": filled["seconds"]}
    if "extended" in r:
        figures["extended"] = r["extended"]
    return {"": figures | _wire(r)}


def _resolve(cfg: dict[str, Any], env: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = aio_bench.run_child("resolve", cfg, env)
    if r["bytes"] != cfg["count"] * cfg["size"]:
        raise RuntimeError(f"read {r['bytes']} bytes, not {cfg['count']} x {cfg['size']}")
    return {"": {"seconds": r["seconds"], "peak_rss_mib": r["peak_mib"]} | _wire(r)}


def _message_figures(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "seconds": r["seconds"],
        "peak_rss_mib": r["peak_mib"],
        "stored_as": r.get("codec", "none"),
        "stored_ratio": r.get("stored_ratio", 1.0),
    } | _wire(r)


def _brief(figures: dict[str, Any]) -> str:
    return f"{figures['seconds']:.3f} s, +{figures['peak_rss_mib']:.0f} MiB"


def size_label(size: int) -> str:
    for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def parse_size(text: str) -> int:
    """``"16MiB"``, ``"2 GiB"``, ``"1KiB"`` or a number of bytes."""
    text = text.replace(" ", "")
    for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


# -- summaries -------------------------------------------------------------------------------


def summarize(rows: list[Row]) -> list[dict[str, Any]]:
    """Each row with its fastest and median time, MB/s, highest peak, and its ratios to the
    fastest of its baselines (baseline seconds / row seconds: above 1 is faster)."""
    groups: dict[tuple[str, int, str], list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    out = []
    for row in rows:
        entry: dict[str, Any] = {
            "suite": row.suite,
            "table": row.table,
            "scenario": row.scenario,
            "size": row.size,
            "size_label": size_label(row.size),
            "data": row.data,
            "client": row.client,
            "network": row.network,
            "io": row.io,
            "compression": row.compression,
            "checksum": row.checksum,
            "config": row.config,
            "runs": row.runs,
            "errors": row.errors,
        }
        if row.runs:
            best, median = min(row.seconds()), statistics.median(row.seconds())
            entry |= {
                "seconds_best": best,
                "seconds_median": median,
                "mb_s_best": row.size / best / 1e6,
                "mb_s_median": row.size / median / 1e6,
                "peak_rss_mib": max(float(r["peak_rss_mib"]) for r in row.runs),
            }
            last = row.runs[-1]
            for name in ("stored_as", "stored_ratio", "stored"):
                if name in last:
                    entry[name] = last[name]
            bases = [b for b in groups[row.group] if b.scenario in row.baselines and b.runs]
            if bases:
                fastest = min(bases, key=lambda b: min(b.seconds()))
                steadiest = min(bases, key=lambda b: statistics.median(b.seconds()))
                entry |= {
                    "baseline": fastest.scenario,
                    "vs_baseline_best": min(fastest.seconds()) / best,
                    "baseline_median": steadiest.scenario,
                    "vs_baseline_median": statistics.median(steadiest.seconds()) / median,
                }
        out.append(entry)
    return out

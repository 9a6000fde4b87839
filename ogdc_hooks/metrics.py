"""The process's Prometheus metrics (prometheus-client), one registry per application.

Counters and histograms are moved where things happen (requests, deliveries,
jobs, runs, calls to GitHub and Argo, reconciliation). Figures that live in the
database (queue depth, oldest ready job, runs by state) are read when
`/metrics` is scraped, by `DatabaseGauges`: one bounded query, shared by
scrapes that come close together, never on a request's hot path. Labels take
few values (route templates, job kinds, states, outcomes): never a user, a
path, a repository or a secret. README "Metrics" lists them all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

# Seconds from a push to its workflow's creation, and a workflow's run (up to days).
_SUBMIT_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_RUN_BUCKETS = (10, 30, 60, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400, 172800)

_QUEUE = text(
    """
    SELECT kind,
           CASE WHEN state = 'running' THEN 'running'
                WHEN run_after <= now() THEN 'ready' ELSE 'waiting' END AS state,
           count(*) AS jobs,
           coalesce(extract(epoch FROM now() - min(run_after)), 0) AS oldest
    FROM jobs WHERE state IN ('queued', 'running') GROUP BY 1, 2
    """
)
_RUNS = text("SELECT state, count(*) AS runs FROM runs GROUP BY state")


@dataclass(frozen=True)
class Snapshot:
    """What the database said at one scrape."""

    jobs: dict[tuple[str, str], int]  # (kind, ready|running|waiting) -> jobs
    oldest_ready_s: float
    runs: dict[str, int]  # state -> runs


class DatabaseGauges(Collector):
    """Gauges read from PostgreSQL when scraped; `refresh` before `generate_latest`.

    A slow or unreachable database costs a scrape at most `timeout_s`, and
    `ogdc_metrics_database_up` says 0 instead of the gauges going stale.
    """

    def __init__(self, *, timeout_s: float = 2.0, max_age_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self.max_age_s = max_age_s
        self._snapshot: Snapshot | None = None
        self._taken = -float("inf")
        self._lock = asyncio.Lock()

    async def refresh(self, engine: AsyncEngine) -> None:
        async with self._lock:
            if time.monotonic() - self._taken < self.max_age_s:
                return
            try:
                self._snapshot = await asyncio.wait_for(self._read(engine), self.timeout_s)
            except Exception as err:  # the scrape still answers, saying the database is away
                log.warning("metrics: the database did not answer (%s)", type(err).__name__)
                self._snapshot = None
            self._taken = time.monotonic()

    async def _read(self, engine: AsyncEngine) -> Snapshot:
        async with engine.begin() as connection:
            await connection.execute(
                text(f"SET LOCAL statement_timeout = {int(self.timeout_s * 1000)}")
            )
            queue = (await connection.execute(_QUEUE)).all()
            runs = (await connection.execute(_RUNS)).all()
        return Snapshot(
            jobs={(row.kind, row.state): int(row.jobs) for row in queue},
            oldest_ready_s=max((float(r.oldest) for r in queue if r.state == "ready"), default=0),
            runs={row.state: int(row.runs) for row in runs},
        )

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "ogdc_metrics_database_up",
            "1 when the last scrape could read the queue and runs from PostgreSQL, else 0.",
        )
        up.add_metric([], 0 if self._snapshot is None else 1)
        yield up
        if self._snapshot is None:
            return
        jobs = GaugeMetricFamily(
            "ogdc_queue_jobs",
            "Jobs in the queue by kind and state: ready, running, waiting (a retry or delay).",
            labels=("kind", "state"),
        )
        for (kind, state), count in sorted(self._snapshot.jobs.items()):
            jobs.add_metric([kind, state], count)
        yield jobs
        yield GaugeMetricFamily(
            "ogdc_queue_oldest_ready_job_age_seconds",
            "How long the oldest job that could run has waited for a worker (0: none waits).",
            value=self._snapshot.oldest_ready_s,
        )
        runs = GaugeMetricFamily("ogdc_runs", "Runs by state.", labels=("state",))
        for state, count in sorted(self._snapshot.runs.items()):
            runs.add_metric([state], count)
        yield runs


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        registry = self.registry
        ProcessCollector(registry=registry)
        self.database = DatabaseGauges()
        registry.register(self.database)
        counter = functools.partial(Counter, registry=registry)
        histogram = functools.partial(Histogram, registry=registry)
        self.requests = counter(
            "ogdc_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
        )
        self.latency = histogram(
            "ogdc_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ("route", "method"),
        )
        self.deliveries = counter(
            "ogdc_webhook_deliveries",
            "Webhook deliveries by forge, event (unverified before the signature is checked) "
            "and answer: accepted, duplicate, ignored, pong, rejected, unavailable.",
            ("forge", "event", "answer"),
        )
        self.deliveries_uncommitted = Gauge(
            "ogdc_webhook_deliveries_uncommitted",
            "Webhook deliveries verified and waiting for the group commit that stores them.",
            registry=registry,
        )
        self.job_outcomes = counter(
            "ogdc_job_outcomes",
            "Job executions by kind and outcome: done, deferred (not yet: a budget), "
            "retried (to run again later), failed.",
            ("kind", "outcome"),
        )
        self.submit_seconds = histogram(
            "ogdc_run_submit_seconds",
            "Seconds from the push (its delivery's arrival) to the workflow's creation in Argo.",
            buckets=_SUBMIT_BUCKETS,
        )
        self.run_seconds = histogram(
            "ogdc_run_duration_seconds",
            "Seconds from a workflow's submission to the end of its run, by the run's end state.",
            ("state",),
            buckets=_RUN_BUCKETS,
        )
        self.follow_endings = counter(
            "ogdc_run_follow_endings",
            "Runs ended without a live workflow to read, by how: archived (read from Argo's "
            "archive), vanished (neither live nor archived), timed_out (stopped at its deadline).",
            ("how",),
        )
        self.follow_resyncs = counter(
            "ogdc_run_follow_resyncs",
            "Passes of the workflow resync: unfinished runs compared with what the list and the "
            "watch heard (a workflow is read on its own only when nothing was heard of it), by "
            "kind: full (every unfinished run), incremental (those whose changes were not "
            "recorded, and those submitted since the pass before).",
            ("kind",),
        )
        self.github_calls = counter(
            "ogdc_github_calls",
            "Requests to the GitHub API by outcome: ok, transient (retried), permanent.",
            ("outcome",),
        )
        self.github_rate_limit = Gauge(
            "ogdc_github_rate_limit_remaining",
            "Requests GitHub said are left in the rate-limit window, by credential kind "
            "(app, installation, token), as of the last answer.",
            ("credential",),
            registry=registry,
        )
        self.argo_calls = counter(
            "ogdc_argo_calls",
            "Requests to the Argo Server (watch streams included) by outcome: ok, transient, "
            "permanent.",
            ("outcome",),
        )
        # Reconciliation (the periodic sweep for lost deliveries and unreported heads).
        self.reconcile_deliveries_recovered = counter(
            "ogdc_reconcile_deliveries_recovered",
            "Deliveries GitHub sent that ogdc-hooks had not stored, recovered by reconciliation.",
        )
        self.reconcile_heads_swept = counter(
            "ogdc_reconcile_heads_swept",
            "Default-branch heads without a delivered push, queued as pushes by reconciliation.",
        )
        self.reconcile_runs = counter(
            "ogdc_reconcile_runs",
            "Reconciliation passes by outcome: ok, skipped (another replica held the lock), error.",
            ("outcome",),
        )

    def github_answer(self, outcome: str, credential: str, remaining: int | None) -> None:
        """One GitHub request's outcome, and the rate limit its answer reported."""
        self.github_calls.labels(outcome).inc()
        if remaining is not None:
            self.github_rate_limit.labels(credential).set(remaining)

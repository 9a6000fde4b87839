"""Telling the forge about a run's current state (the `report` job).

A report job always sends the run's state *at the time it runs*; changes that
happen meanwhile queue the job once more (see `jobs/queue.py`), so the last
word on the commit is always the latest state, and reports of one run never
race each other. A change the job has already read when it reads the run is
not reported a second time: the read clears the job's "once more" in the same
transaction, under the run's share lock (`_current`), so a run's end is
reported once. So a run's updates that wait (e.g. for GitHub's write budget,
`forges/write_budget.py`) collapse into one write of the latest state. The runs of
a big push are shown by one summary check instead (`summary.py`). A finished run still
missing its failure details or output link is reported by the `details` job once it has
read them (`pipeline/details.py`).
"""

from __future__ import annotations

from ogdc_hooks.jobs import queue
from ogdc_hooks.jobs.errors import PermanentError
from ogdc_hooks.jobs.kinds import run_id_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.commit_report import commit_report
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.details import ask_for_details
from ogdc_hooks.pipeline.failure_report import run_url
from ogdc_hooks.pipeline.sources import on_forge
from ogdc_hooks.pipeline.summary import folded_into_summary


async def _current(pipeline: Pipeline, job: Job) -> store.RunRecord | None:
    """The run to report, and the job's "once more" met by this read (see the docstring)."""
    async with pipeline.database.engine.begin() as connection:
        run = await store.read_for_report(connection, run_id_of(job))
        await queue.met(connection, job)
    return run


async def handle_report(pipeline: Pipeline, job: Job) -> None:
    run = await _current(pipeline, job)
    if run is not None and await ask_for_details(pipeline, run):
        return  # its end is reported with its failure details or output link, once read
    forge = pipeline.forges.get(run.forge) if run is not None else None
    if run is None or forge is None or not on_forge(run.repository) or not run.reports:
        return  # nowhere to report, or not for this requester to say: the run is only recorded
    if await folded_into_summary(pipeline, run):
        return  # one of a big push's runs, shown by its summary check
    settings = pipeline.settings
    report = commit_report(
        run,
        ui_base=settings.argo_ui_base,
        namespace=settings.argo_namespace,
        run_url=run_url(settings.public_url, settings.api_root_path, run.id),
        pvc=settings.workflow_pvc_name,
    )
    try:
        forge_id = await forge.report(report, run.check_run_id, store.repo_of(run))
    except PermanentError as err:
        await record_report_failure(pipeline, job, str(err))
        return
    if forge_id is not None and forge_id != run.check_run_id:
        async with pipeline.database.engine.begin() as connection:
            await store.update_fields(connection, run.id, check_run_id=forge_id, report_error=None)


async def record_report_failure(pipeline: Pipeline, job: Job, error: str) -> None:
    """Reporting failed for good: the run goes on; the failure is kept on the run."""
    async with pipeline.database.engine.begin() as connection:
        await store.update_fields(connection, run_id_of(job), report_error=error[:2000])

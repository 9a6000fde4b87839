"""How long a run may stay unfinished: its workflow's own deadline, else the setting."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from ogdc_hooks.pipeline.follow import deadline_s
from ogdc_hooks.pipeline.store import RunRecord
from ogdc_hooks.runstate import RunState


def _run(workflow: dict[str, Any] | None) -> RunRecord:
    now = datetime.now(UTC)
    return RunRecord.from_mapping(
        {
            **dict.fromkeys(RunRecord.__dataclass_fields__),
            "id": uuid.uuid4(),
            "state": RunState.RUNNING.value,
            "workflow": workflow,
            "created_at": now,
            "updated_at": now,
        }
    )


@pytest.mark.parametrize(
    ("workflow", "seconds"),
    [
        ({"spec": {"activeDeadlineSeconds": 7200}}, 7200),
        ({"spec": {}}, 48 * 3600),
        (None, 48 * 3600),
        ({"spec": {"activeDeadlineSeconds": 0}}, 48 * 3600),
        ({"spec": {"activeDeadlineSeconds": "7200"}}, 48 * 3600),
        ({"spec": {"activeDeadlineSeconds": True}}, 48 * 3600),
    ],
)
def test_the_workflows_own_deadline_wins_else_the_setting(
    workflow: dict[str, Any] | None, seconds: float
) -> None:
    assert deadline_s(_run(workflow), 48.0) == seconds

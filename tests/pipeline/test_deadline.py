"""How long a run may stay unfinished: its workflow's own deadline, else the setting."""

from __future__ import annotations

from typing import Any

import pytest

from ogdc_hooks.pipeline.follow import deadline_s


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
    own = ((workflow or {}).get("spec") or {}).get("activeDeadlineSeconds")
    assert deadline_s(own, 48.0) == seconds

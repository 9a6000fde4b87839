"""The settings a report job reads, for tests that drive `handle_report` without a service."""

from __future__ import annotations

from types import SimpleNamespace

# What the report job reads of the settings (no Argo, so no failure details to wait for).
SETTINGS = SimpleNamespace(
    argo_ui_base=None,
    argo_namespace="qgnet",
    summary_check_threshold=20,
    public_url=None,
    api_root_path="/",
    workflow_pvc_name=None,
)

"""One command on a fresh machine: no OGDC_DB_HOST means an embedded PostgreSQL in OGDC_DATA_DIR."""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Api
from tests.support.postgres import stop_embedded
from tests.support.service import Service

_GENERATED = re.compile(r"^  admin password\s+(\S+) \(generated; shown only now", re.MULTILINE)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """OGDC_DATA_DIR; the embedded server the service leaves running is stopped afterwards.

    Not under pytest's tmp_path: run as root, pgserver runs PostgreSQL as its own user and
    opens the directories above the data to it, which another pytest process may close again
    (pytest keeps its temporary root private)."""
    directory = Path(tempfile.mkdtemp(prefix="ogdc-embedded-")) / "ogdc-data"
    yield directory
    stop_embedded(directory / "pgdata")
    shutil.rmtree(directory.parent, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning:platformdirs")
def test_embedded_mode_starts_with_nothing_configured(data_dir: Path) -> None:
    env = {"OGDC_DATA_DIR": str(data_dir)}
    with Service(env) as service:
        generated = _GENERATED.findall(service.log_text())
        assert len(generated) == 1, service.log_text()
        password = generated[0]
        api = Api(service)
        token = api.login("admin", password)
        assert api.call("GET", "/user", token).json() == {"current_user": "admin"}
        assert "the embedded PostgreSQL" in service.log_text()
        assert "Warning" not in service.log_text()  # a clean first start
        assert service.stop() == 0
    secrets_file = data_dir / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()  # it stopped with serve
    with Service(env) as service:  # a second start reuses both, and prints nothing
        assert "admin password" not in service.log_text()
        Api(service).login("admin", password)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning:platformdirs")
def test_the_start_says_what_the_service_will_and_will_not_do(data_dir: Path) -> None:
    with Service({"OGDC_DATA_DIR": str(data_dir)}) as service:
        block = service.log_text().split("ogdc-hooks is starting:\n", 1)[1]
        facts = dict(
            line.strip().split("  ", 1) for line in block.splitlines()[:7] if line.startswith("  ")
        )
        assert (
            facts["database"].strip()
            == f"embedded PostgreSQL in {data_dir / 'pgdata'} (stops with serve)"
        )
        assert "dry run: ARGO_WORKFLOWS_SERVICE_URL is not set" in facts["argo"]
        assert (
            "off: GITHUB_WEBHOOK_SECRET is not set, so /webhooks/github answers 503"
            in facts["webhooks"]
        )
        assert "neither a GitHub App nor GITHUB_TOKEN" in facts["reporting"]
        assert facts["workers"].strip() == "4 slot(s)"
        assert "admin_created" in service.log_text()  # the first start creates, not updates

        second = Service({"OGDC_DATA_DIR": str(data_dir)})
        second.launch()
        assert second.wait(60) == 1
        [line] = [line for line in second.log_text().splitlines() if "error" in line]
        assert line == (
            f"ogdc-hooks: error: another `ogdc-hooks serve` (PID {service.process.pid}) uses "
            f"the embedded database in {data_dir}: stop it first, or give this one its own "
            "OGDC_DATA_DIR"
        )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning:platformdirs")
def test_in_json_mode_every_line_is_json_and_the_summary_is_one_object(data_dir: Path) -> None:
    env = {"OGDC_DATA_DIR": str(data_dir), "OGDC_LOG_FORMAT": "json"}
    with Service(env) as service:
        lines = service.log_text().splitlines()
        assert len(service.log_lines()) == len(lines)  # the password is no plain line
        [start] = [line for line in service.log_lines() if line["message"] == "starting"]
        assert {"database", "argo", "webhooks", "reporting", "workers"} <= set(start)
        assert str(start["admin_password"]).endswith(
            f"(generated; shown only now, kept in {data_dir / 'secrets.json'})"
        )

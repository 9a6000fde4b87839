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
from tests.support.service import Service

_GENERATED = re.compile(r"Generated the admin password .*?: (\S+)$", re.MULTILINE)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """OGDC_DATA_DIR; the embedded server the service leaves running is stopped afterwards.

    Not under pytest's tmp_path: run as root, pgserver runs PostgreSQL as its own user and
    opens the directories above the data to it, which another pytest process may close again
    (pytest keeps its temporary root private)."""
    directory = Path(tempfile.mkdtemp(prefix="ogdc-embedded-")) / "ogdc-data"
    yield directory
    if (directory / "pgdata" / "postmaster.pid").exists():
        import pgserver

        pgserver.get_server(directory / "pgdata", cleanup_mode="stop").cleanup()
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
    with Service(env) as service:  # a second start reuses both, and prints nothing
        assert "Generated the admin password" not in service.log_text()
        Api(service).login("admin", password)

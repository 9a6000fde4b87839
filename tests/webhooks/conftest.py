from tests.jobs.conftest import db

__all__ = ["db"]

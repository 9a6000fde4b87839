"""The tables of the service, as SQLAlchemy 2 declarative models.

Every change here comes with an Alembic revision in `migrations/versions/`;
`tests/test_migrations.py` fails when the two disagree.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

HOST_MAX = 255  # host[:port] of a forge instance
LOGIN_MAX = 40  # Forgejo and Gitea allow 40, GitHub 39


class Base(DeclarativeBase):
    pass


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class User(Base):
    """A person allowed to use the API and, through their `ForgeLogin`s, to push recipes."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(150), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    # Carried in every token with the id; a password change bumps it, ending older tokens.
    token_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ForgeLogin(Base):
    """A user's login on one forge instance (`host`: github.com, codeberg.org, ...).

    One login per user and instance; on an instance a login belongs to one user,
    ignoring case (GitHub and Forgejo both match logins ignoring case).
    """

    __tablename__ = "forge_logins"
    __table_args__ = (
        Index("forge_logins_host_login_lower_key", "host", func.lower(text("login")), unique=True),
    )

    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(String(HOST_MAX), primary_key=True)
    login: Mapped[str] = mapped_column(String(LOGIN_MAX), nullable=False)


class LoginFailure(Base):
    """A failed (or not yet successful) login, shared by every replica's throttle."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("login_failures_address_idx", "address", "at"),
        Index("login_failures_username_idx", "username", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), nullable=False)
    address: Mapped[str] = mapped_column(String(100), nullable=False)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )


class Delivery(Base):
    """A webhook delivery, stored before it is acknowledged; its id makes redelivery idempotent."""

    __tablename__ = "deliveries"

    forge: Mapped[str] = mapped_column(String(253), primary_key=True)  # the sender's host
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[str | None] = mapped_column(String(100))
    repository: Mapped[str | None] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    received_at: Mapped[datetime] = _created()
    # What the forge was answered (webhooks.store.Answer): accepted (202), ignored (200,
    # stored without its body), or swept (no forge sent it: the branch-head sweep's push).
    answer: Mapped[str] = mapped_column(String(20), nullable=False, server_default="accepted")
    # Redeliveries of this id since, each answered 200 (already received, or ignored again).
    repeats: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    repeated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """A unit of background work, claimed with FOR UPDATE SKIP LOCKED under a lease."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("jobs_ready_idx", "state", "run_after"),
        Index(
            "jobs_running_repository_idx",
            "repository",
            postgresql_where=text("state = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # queued -> running -> done | failed
    state: Mapped[str] = mapped_column(String(20), nullable=False, server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="8")
    # Takeovers from a worker that died holding it; at two the job is given up as poisoned.
    crashes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    run_after: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set when the job is asked for again while it runs: it is queued once more on completion.
    again: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    dedupe_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    # "<forge host>/<full name>" (jobs.kinds.repository_key): its jobs run a few at a time.
    repository: Mapped[str | None] = mapped_column(String(560))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Installation(Base):
    """A GitHub App installation, remembered from `installation` events."""

    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(String(100), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class InstallationRepository(Base):
    """A repository an installation covers; maps a repository to its installation."""

    __tablename__ = "installation_repositories"

    full_name: Mapped[str] = mapped_column(String(300), primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("installations.id", ondelete="CASCADE"), nullable=False
    )


class Run(Base):
    """One recipe at one commit, one attempt: at most one Argo workflow."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint(
            "forge", "repository", "commit_sha", "recipe", "attempt", name="runs_identity_key"
        ),
        Index("runs_state_idx", "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    forge: Mapped[str] = mapped_column(String(253), nullable=False)  # the forge host
    repository: Mapped[str] = mapped_column(String(300), nullable=False)
    clone_url: Mapped[str] = mapped_column(Text, nullable=False)
    commit_sha: Mapped[str] = mapped_column(String(64), nullable=False)
    ref: Mapped[str | None] = mapped_column(String(300))
    recipe: Mapped[str] = mapped_column(String(300), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    trigger: Mapped[str] = mapped_column(String(20), nullable=False)
    requested_by: Mapped[str | None] = mapped_column(String(150))
    overwrite: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    dry_run: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    message: Mapped[str | None] = mapped_column(Text)
    workflow_name: Mapped[str | None] = mapped_column(String(253), unique=True)
    workflow: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    problems: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    check_run_id: Mapped[int | None] = mapped_column(BigInteger)
    report_error: Mapped[str | None] = mapped_column(Text)
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    delivery_id: Mapped[str | None] = mapped_column(String(100))  # the push that asked for it
    # False: the run is only recorded, never shown on the commit (an API submission by
    # someone who may not act on the repository, or of a directory outside recipes/).
    reports: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    progress: Mapped[str | None] = mapped_column(String(32))  # Argo's "done/total" steps
    # Why it failed: classification, explanation, advice and each failed step's masked log
    # tail (`ogdc_hooks/failure.py`); read from Argo once the run has failed.
    failure: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    output_url: Mapped[str | None] = mapped_column(Text)  # a succeeded temporary output's zip
    # A pull request's or merge group's run: the commit its changes are compared with (the
    # merge base), that commit's render of the recipe (None: new there), and the PR's number.
    base_sha: Mapped[str | None] = mapped_column(String(64))
    base_workflow: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    pull_request: Mapped[int | None] = mapped_column(Integer)
    # What the preview of a dry run says that the workflow does not (inputs, output, partitions).
    recipe_facts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class PullRequest(Base):
    """An open or closed pull request, as its newest delivery says: the head its runs are at."""

    __tablename__ = "pull_requests"

    forge: Mapped[str] = mapped_column(String(253), primary_key=True)
    repository: Mapped[str] = mapped_column(String(300), primary_key=True)  # the base repository
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    head_sha: Mapped[str] = mapped_column(String(64), nullable=False)
    base_ref: Mapped[str] = mapped_column(String(300), nullable=False)
    clone_url: Mapped[str] = mapped_column(Text, nullable=False)  # the base repository's
    fetch_ref: Mapped[str] = mapped_column(String(300), nullable=False)  # refs/pull/N/head
    author: Mapped[str | None] = mapped_column(String(LOGIN_MAX))
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    open: Mapped[bool] = mapped_column(Boolean, nullable=False)
    # When the delivery that set `head_sha` arrived: a comment written before it saw another head.
    head_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = _updated()


class RunEvent(Base):
    """A state change of a run, kept for `GET /runs/{id}`."""

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = _created()


class Redelivery(Base):
    """A delivery GitHub was asked to send again; a GUID is asked for at most once."""

    __tablename__ = "redeliveries"

    guid: Mapped[str] = mapped_column(String(100), primary_key=True)
    attempt_id: Mapped[int] = mapped_column(BigInteger, nullable=False)  # GitHub's delivery id
    hook: Mapped[str] = mapped_column(String(400), nullable=False)  # "app" or "owner/name#hook"
    asked_at: Mapped[datetime] = _created()


class BranchHead(Base):
    """A repository pushes came from, and the last default-branch commit a push job took."""

    __tablename__ = "branch_heads"

    forge: Mapped[str] = mapped_column(String(253), primary_key=True)  # the forge host
    repository: Mapped[str] = mapped_column(String(300), primary_key=True)
    clone_url: Mapped[str] = mapped_column(Text, nullable=False)
    default_branch: Mapped[str] = mapped_column(String(300), nullable=False)
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = _updated()


class ForgeWrite(Base):
    """One content-creating request sent to a forge (or a summary check's update), kept for
    an hour: the ledger `forges/write_budget.py` paces writes by, shared by every replica
    and kept across restarts."""

    __tablename__ = "forge_writes"
    __table_args__ = (Index("forge_writes_bucket_at_idx", "bucket", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(300), nullable=False)  # whose budget
    at: Mapped[datetime] = _created()

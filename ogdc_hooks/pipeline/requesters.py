"""Who may ask for what on a forge: a request made there (a push, a `/ogdc run` comment,
a re-run or a button of a run's report) speaks for an ogdc-hooks user only when an active
user has the requester's login on that forge. Anyone else may ask for nothing; what a
known user may then do (an admin more) each caller decides. (What an API submission may
borrow of the service's credentials is `authority.py`.)
"""

from __future__ import annotations

from ogdc_hooks.auth.users import Account
from ogdc_hooks.pipeline.context import Pipeline


async def known_user(pipeline: Pipeline, forge: str, login: str | None) -> Account | None:
    """The active user who is `login` on the forge at `forge`; None when there is no login,
    no user has it, or that user is disabled, so that every caller refuses all three alike."""
    if not login:
        return None
    user = await pipeline.users.by_forge_login(forge, login)
    return user if user is not None and user.is_active else None

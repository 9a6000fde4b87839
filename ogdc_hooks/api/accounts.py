"""Tokens and users: `POST /token`, `GET /user` and the admin's user management."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ogdc_hooks.api.bodies import FORM, JSON, form_boolean, read_body
from ogdc_hooks.api.context import LOGIN_THROTTLE, SETTINGS, USERS
from ogdc_hooks.api.errors import api_error
from ogdc_hooks.api.openapi import operation
from ogdc_hooks.api.security import UNAUTHORIZED_HEADERS, admin_only, authenticated_user, public
from ogdc_hooks.auth import rules
from ogdc_hooks.auth.tokens import IssuedToken, Subject, issue_token
from ogdc_hooks.auth.users import ADMIN_NAME, UNSET, Account, LoginTaken, UserExists
from ogdc_hooks.logs import log_event

log = logging.getLogger(__name__)


def _blank_is_none(value: Any) -> Any:
    """A form cannot send null: an empty github_login means "none" (in JSON too)."""
    return None if value == "" else value


def _document_blank(schema: dict[str, Any]) -> None:
    schema["anyOf"].append({"type": "string", "const": ""})


# An optional GitHub login whose schema also shows the empty string that means none.
OptionalGithubLogin = Annotated[
    rules.GithubLogin | None,
    BeforeValidator(_blank_is_none),
    Field(json_schema_extra=_document_blank),
]


def _bad(message: str) -> PydanticCustomError:
    return PydanticCustomError("forge_logins", message)


def _login_problem(host: str, login: Any, removable: bool) -> str | None:
    """What is wrong with the value a host maps to, in words; None when nothing is."""
    if login is None:
        return None if removable else f"the login on {host} is null; leave the host out instead"
    if not isinstance(login, str):
        return f"the login on {host} must be text"
    return rules.forge_login_problem(login)


def _forge_logins(removable: bool) -> Callable[[Any, ValidationInfo], Any]:
    """A "before" validator that says what is wrong with a forge-login mapping in words
    (pydantic's own errors would name a pattern); what it passes, the schema accepts."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if isinstance(info.context, dict) and info.context.get("form"):
            raise _bad("can only be given in a JSON body (a form field holds text, not a mapping)")
        if not isinstance(value, dict):
            raise _bad('must be an object mapping hosts to logins, e.g. {"codeberg.org": "alice"}')
        if len(value) > rules.FORGE_LOGINS_MAX:
            raise _bad(f"may name at most {rules.FORGE_LOGINS_MAX} hosts at once")
        for host, login in value.items():
            problem = rules.forge_host_problem(host) or _login_problem(host, login, removable)
            if problem:
                raise _bad(problem)
        return value

    return check


_FORGE_LOGINS_DESCRIPTION = (
    "The user's logins on forges, as an object mapping each forge's host (lower case, "
    'with :port if not the default) to the login there, e.g. {"github.com": "alice", '
    '"codeberg.org": "alice-c"}: one login a host, each host\'s logins unique ignoring case. '
    "The configured GitHub's host holds the same login as `github_login`."
)


def _only_hosts(schema: dict[str, Any]) -> None:
    """Say what pydantic's schema of the mapping leaves out: keys other than hosts are
    refused, and the bound is on the number of hosts."""
    schema["maxProperties"] = schema.pop("maxLength")
    [pattern] = schema["patternProperties"]
    schema["propertyNames"]["pattern"] = pattern
    schema["additionalProperties"] = False


NewForgeLogins = Annotated[
    dict[rules.ForgeHost, rules.ForgeLogin],
    BeforeValidator(_forge_logins(removable=False)),
    Field(
        max_length=rules.FORGE_LOGINS_MAX,
        description=_FORGE_LOGINS_DESCRIPTION,
        json_schema_extra=_only_hosts,
    ),
]
ForgeLoginChanges = Annotated[
    dict[rules.ForgeHost, rules.ForgeLogin | None],
    BeforeValidator(_forge_logins(removable=True)),
    Field(
        max_length=rules.FORGE_LOGINS_MAX,
        description=_FORGE_LOGINS_DESCRIPTION
        + " A host with a login sets it (replacing the user's login there), a host with "
        "null removes it, hosts left out keep theirs (JSON merge patch, RFC 7396).",
        json_schema_extra=_only_hosts,
    ),
]


def _not_null(*names: str, min_properties: int = 0) -> Callable[[dict[str, Any]], None]:
    """Document optional fields `names` as never null (None only stands for "not given")."""

    def edit(schema: dict[str, Any]) -> None:
        for name in names:
            field = schema["properties"][name]
            for branch in field.pop("anyOf"):
                if branch.get("type") != "null":
                    field.update(branch)
            field.pop("default", None)
        if min_properties:
            schema["minProperties"] = min_properties

    return edit


class TokenForm(BaseModel):
    """The OAuth2 password form (RFC 6749 4.3); client fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_not_null("grant_type"))

    grant_type: Literal["password"] | None = None
    username: rules.LoginName
    password: rules.LoginPassword


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (the scheme, not a secret)
    utc_expiration: datetime


class CurrentUser(BaseModel):
    current_user: str


class NewUserForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: rules.Username
    password: rules.Password
    github_login: OptionalGithubLogin = None


class NewUser(NewUserForm):
    """A new user as JSON, which can also carry forge logins (a form cannot)."""

    forge_logins: NewForgeLogins = Field(default_factory=dict)


class UserChangesForm(BaseModel):
    """Only the fields given change; `github_login: null` (or empty in a form) removes it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_not_null("password", "active", min_properties=1),
    )

    password: rules.Password | None = None
    github_login: OptionalGithubLogin = None
    active: StrictBool | None = None

    _form_active = field_validator("active", mode="before")(form_boolean)

    @model_validator(mode="after")
    def _given_fields_not_null(self) -> UserChangesForm:
        for name in ("password", "active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} must not be null")
        if not self.model_fields_set:
            raise ValueError("give at least one of password, github_login, forge_logins, active")
        return self


class UserChanges(UserChangesForm):
    """The changes as JSON, which can also carry forge logins: null for a host removes
    its login."""

    forge_logins: ForgeLoginChanges = Field(default_factory=dict)


class UserView(BaseModel):
    name: str
    github_login: str | None = Field(description="The login on the configured GitHub, if any")
    forge_logins: dict[str, str] = Field(description=_FORGE_LOGINS_DESCRIPTION)
    is_admin: bool
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, account: Account) -> UserView:
        return cls(
            name=account.name,
            github_login=account.github_login,
            forge_logins=dict(account.forge_logins),
            is_admin=account.is_admin,
            active=account.is_active,
            created_at=account.created_at,
            updated_at=account.updated_at,
        )


class UserList(BaseModel):
    users: list[UserView]


class Message(BaseModel):
    message: str


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


def _conflict(error: UserExists, github_host: str, github_login: str | None) -> web.HTTPException:
    """409 naming what is taken; `github_login:` first when that field asked for it."""
    named = isinstance(error, LoginTaken) and error.host == github_host and github_login
    return api_error(409, f"github_login: {error}" if named else str(error))


def _github_rules(request: web.Request, logins: Mapping[str, str | None]) -> str:
    """The configured GitHub's host; 422 when `logins` gives it a login GitHub cannot have."""
    host = request.app[SETTINGS].github_host
    login = logins.get(host)
    problem = rules.forge_login_problem(login, github=True) if login else None
    if problem:
        raise api_error(422, f"forge_logins: {problem} (on {host}, the configured GitHub)")
    return host


def _merged(
    github_login: str | None, given: bool, logins: Mapping[str, str | None], github_host: str
) -> None:
    """422 when `github_login` and `forge_logins` name two logins on the configured GitHub."""
    if not given or github_host not in logins:
        return
    other = logins[github_host]
    if (other or "").lower() != (github_login or "").lower():
        raise api_error(
            422,
            f"github_login: is the login on {github_host}, which forge_logins gives "
            "another one; give it once",
        )


routes = web.RouteTableDef()


async def sign_in(request: web.Request, username: str, password: str) -> IssuedToken:
    """A token for the user, under the login throttle: 429 when throttled, 401 when wrong.

    `POST /token` and the dashboard's sign-in (`ui/`) both come through here."""
    throttle = request.app[LOGIN_THROTTLE]
    address = request.remote or "unknown"
    async with throttle.turn(username):
        admitted = await throttle.admit(username, address)
        if admitted.attempt is None:
            log_event(log, "login_throttled", user=username, remote=address)
            raise api_error(
                429,
                "Too many failed logins; try again later.",
                {"Retry-After": str(math.ceil(admitted.wait))},
            )
        account = await request.app[USERS].authenticate(username, password)
        if account is None:
            log_event(log, "login_failed", user=username, remote=address)
            raise api_error(401, "Incorrect username or password.", UNAUTHORIZED_HEADERS)
        await throttle.forgive(username, address, admitted.attempt)
    key = request.app[SETTINGS].jwt_secret_key
    assert key is not None  # create_app refuses to start without one
    subject = Subject(account.name, account.id, account.token_version)
    issued = issue_token(subject, key.reveal(), datetime.now(UTC))
    log_event(log, "login", user=account.name)
    return issued


@routes.post("/token")
@public
async def token(request: web.Request) -> web.Response:
    """Trade a user name and password for an access token."""
    form = await read_body(request, TokenForm, (FORM,))
    issued = await sign_in(request, form.username, form.password)
    return _json(TokenResponse(access_token=issued.token, utc_expiration=issued.expires_at))


@routes.get("/user")
async def current_user(request: web.Request) -> web.Response:
    """Who the token belongs to; a cheap way to check that a token works."""
    return _json(CurrentUser(current_user=authenticated_user(request).name))


async def create_account(request: web.Request, form: NewUser, by: Account) -> Account:
    """Create the user `form` describes, for `by` (an admin): 409 or 422 in words when it
    cannot be. `POST /create_user` and the dashboard's admin page come through here."""
    github_host = _github_rules(request, form.forge_logins)
    _merged(form.github_login, form.github_login is not None, form.forge_logins, github_host)
    try:
        account = await request.app[USERS].create(
            form.username, form.password, form.github_login, forge_logins=form.forge_logins
        )
    except UserExists as err:
        raise _conflict(err, github_host, form.github_login) from None
    log_event(log, "user_created", user=account.name, by=by.name)
    return account


@routes.post("/create_user")
@admin_only
async def create_user(request: web.Request) -> web.Response:
    form = await read_body(request, NewUser, (FORM, JSON))
    account = await create_account(request, form, authenticated_user(request))
    return _json(Message(message=f'User with username "{account.name}" created.'), status=201)


@routes.get("/users")
@admin_only
async def list_users(request: web.Request) -> web.Response:
    accounts = await request.app[USERS].list()
    return _json(UserList(users=[UserView.of(account) for account in accounts]))


@routes.patch("/users/{name}")
@admin_only
async def change_user(request: web.Request) -> web.Response:
    changes = await read_body(request, UserChanges, (JSON, FORM))
    account = await change_account(
        request, request.match_info["name"], changes, authenticated_user(request)
    )
    return _json(UserView.of(account))


async def change_account(
    request: web.Request, name: str, changes: UserChanges, by: Account
) -> Account:
    """Change user `name` as `changes` says, for `by` (an admin): 404, 409 or 422 in words
    when it cannot be. `PATCH /users/{name}` and the dashboard's admin page use it."""
    given = changes.model_fields_set
    if name == by.name and changes.active is False:
        raise api_error(409, "You cannot disable your own account.")
    if name == ADMIN_NAME and "password" in given:
        raise api_error(409, "The admin's password follows OGDC_ADMIN_PASSWORD; change it there.")
    github_host = _github_rules(request, changes.forge_logins)
    _merged(changes.github_login, "github_login" in given, changes.forge_logins, github_host)
    try:
        account = await request.app[USERS].update(
            name,
            password=changes.password if changes.password is not None else UNSET,
            github_login=changes.github_login if "github_login" in given else UNSET,
            forge_logins=changes.forge_logins,
            active=changes.active if changes.active is not None else UNSET,
        )
    except UserExists as err:
        raise _conflict(err, github_host, changes.github_login) from None
    if account is None:
        raise api_error(404, f"No user named {name!r}.")
    log_event(log, "user_changed", user=name, fields=sorted(given), by=by.name)
    return account


@routes.delete("/users/{name}")
@admin_only
async def delete_user(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name == authenticated_user(request).name:
        raise api_error(409, "You cannot delete your own account.")
    if not await request.app[USERS].delete(name):
        raise api_error(404, f"No user named {name!r}.")
    log_event(log, "user_deleted", user=name, by=authenticated_user(request).name)
    return _json(Message(message=f'User with username "{name}" deleted.'))


_NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": rules.USERNAME_MAX},
}

openapi_paths: dict[str, dict[str, Any]] = {
    "/token": {
        "post": operation(
            "Trade a user name and password for an access token (OAuth2 password flow)",
            body={FORM: TokenForm},
            responses={200: ("A token valid for 30 minutes", TokenResponse)},
            errors={
                401: "Incorrect user name or password",
                429: "Too many failed logins; see Retry-After",
            },
        )
    },
    "/user": {
        "get": operation(
            "Who the token belongs to", responses={200: ("The token's user", CurrentUser)}
        )
    },
    "/create_user": {
        "post": operation(
            "Create a user (admin only)",
            body={FORM: NewUserForm, JSON: NewUser},
            responses={201: ("The user was created", Message)},
            errors={409: "A user with this name exists, or another user has one of the logins"},
        )
    },
    "/users": {"get": operation("Every user (admin only)", responses={200: ("Users", UserList)})},
    "/users/{name}": {
        "patch": operation(
            "Change a user's password, GitHub login, forge logins or active flag (admin only)",
            parameters=[_NAME_PARAMETER],
            body={JSON: UserChanges, FORM: UserChangesForm},
            responses={200: ("The user as changed", UserView)},
            errors={
                404: "No such user",
                409: "A login is taken on its forge, or the change would lock the admin out",
            },
        ),
        "delete": operation(
            "Delete a user (admin only; not yourself)",
            parameters=[_NAME_PARAMETER],
            responses={200: ("The user was deleted", Message)},
            errors={404: "No such user", 409: "You cannot delete your own account"},
        ),
    },
}
openapi_models: tuple[type[BaseModel], ...] = (
    TokenForm,
    TokenResponse,
    CurrentUser,
    NewUserForm,
    NewUser,
    UserChangesForm,
    UserChanges,
    UserView,
    UserList,
    Message,
)

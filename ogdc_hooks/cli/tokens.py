"""`ogdc-hooks set-token`: keep single sign-on tokens for later commands, as `ogdc-runner
set-token` (0.4.2) does.

The tokens come from the service's `/authorize` page after signing in at
`/login` (its whole JSON for `--json-str`, or each token with `--access` and
`--refresh`). They are kept in the token cache, `TOKEN_CACHE_FILE` (default
`~/.config/ogdc-hooks/tokens.json`), readable by the user alone (0600); a token
not given is kept from the cache while it is unexpired. `ApiClient` uses the
cache when no `OGDC_API_USERNAME`/`OGDC_API_PASSWORD` is set, and trades the
refresh token at `POST /refresh` once the access token expires.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

from ogdc_hooks.cli.errors import CommandError

ACCESS = "access_token"
REFRESH = "refresh_token"


def token_cache_path(env: Mapping[str, str] | None = None) -> Path:
    """`TOKEN_CACHE_FILE`, else `$XDG_CONFIG_HOME/ogdc-hooks/tokens.json` (~/.config)."""
    env = os.environ if env is None else env
    named = (env.get("TOKEN_CACHE_FILE") or "").strip()
    if named:
        return Path(named).expanduser()
    base = (env.get("XDG_CONFIG_HOME") or "").strip() or str(Path.home() / ".config")
    return Path(base) / "ogdc-hooks" / "tokens.json"


def expires_at(token: str) -> float | None:
    """When a JWT says it expires (unverified: the service checks it, this only decides
    whether to refresh first); None when it is not a JWT or names no expiry."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    expiry = claims.get("exp")
    return float(expiry) if isinstance(expiry, int | float) else None


def usable(token: object, margin: float = 0.0) -> bool:
    """A token string that does not expire within `margin` seconds (or names no expiry)."""
    if not isinstance(token, str) or not token:
        return False
    expiry = expires_at(token)
    return expiry is None or expiry - margin > time.time()


def parse_tokens(text: str) -> dict[str, str]:
    """The tokens of `/authorize`'s JSON (`{"token": {...}}`) or of a bare token object."""
    try:
        document: Any = json.loads(text)
    except ValueError:
        raise CommandError("--json-str is not JSON; paste the whole answer of /authorize") from None
    if isinstance(document, dict) and isinstance(document.get("token"), dict):
        document = document["token"]
    if not isinstance(document, dict):
        raise CommandError("--json-str holds no tokens; paste the whole answer of /authorize")
    return {k: v for k in (ACCESS, REFRESH) if isinstance(v := document.get(k), str) and v}


def read_cache(path: Path) -> dict[str, str]:
    """The cached tokens; an unreadable or mangled cache counts as empty."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {k: v for k in (ACCESS, REFRESH) if isinstance(v := document.get(k), str) and v}


def write_cache(path: Path, tokens: Mapping[str, str]) -> None:
    """Replace the cache with `tokens`, readable by the user alone (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(dict(tokens), handle, indent=2)
    os.chmod(path, 0o600)  # a cache made before with wider permissions is narrowed


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `set-token`."""
    command = subparsers.add_parser(
        "set-token",
        help="keep single sign-on tokens (from /login) for later commands",
        description="Save the access and refresh tokens that the service's /authorize page "
        "shows after signing in at /login, in TOKEN_CACHE_FILE (default "
        "~/.config/ogdc-hooks/tokens.json, mode 0600). Later commands use them when "
        "OGDC_API_USERNAME/OGDC_API_PASSWORD are not set, and refresh the access token "
        "through POST /refresh when it expires.",
    )
    command.add_argument("--access", metavar="TOKEN", help="the access token")
    command.add_argument("--refresh", metavar="TOKEN", help="the refresh token")
    command.add_argument(
        "--json-str", metavar="JSON", help="the whole JSON answer of /authorize (or /refresh)"
    )
    command.set_defaults(func=_set_token_command)


def _set_token_command(args: argparse.Namespace) -> int:
    given = parse_tokens(args.json_str) if args.json_str else {}
    for key, value in ((ACCESS, args.access), (REFRESH, args.refresh)):
        if value:
            given[key] = value  # an explicit flag wins over --json-str
    if not given:
        raise CommandError("give at least one of --access, --refresh or --json-str")
    path = token_cache_path()
    kept = {k: v for k, v in read_cache(path).items() if k not in given and usable(v)}
    write_cache(path, {**kept, **given})
    print(f"OGDC tokens updated successfully ({path}).")
    return 0

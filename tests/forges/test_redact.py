"""The last line of defence strips credentials and leaves ordinary text alone."""

from __future__ import annotations

import pytest

from ogdc_hooks.forges.github.redact import MARK, redact

INSTALLATION = "ghs_" + "A1b2C3d4" * 4 + "zz99"
PERSONAL = "ghp_" + "x" * 36
FINE_GRAINED = "github_pat_11ABCDEFG0" + "q" * 60
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiI0MjQyIn0.c2lnbmF0dXJlLWJ5dGVz"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"fatal: could not read from {INSTALLATION}", INSTALLATION),
        (f"token={PERSONAL} rejected", PERSONAL),
        (f"using {FINE_GRAINED}", FINE_GRAINED),
        (f"bad jwt {JWT}", JWT),
        ("Authorization: token s3cr3t-value", "s3cr3t-value"),
        ("header authorization=Basic eDphYmNkZWZn", "eDphYmNkZWZn"),
        ("sent Bearer abcdefgh12345678.xyz to argo", "abcdefgh12345678.xyz"),
        ("clone https://x-access-token:hunter22@github.com/o/r.git failed", "hunter22"),
        ("clone https://someone@github.example/o/r.git", "someone"),
        (f"key was {PEM} oops", "MIIEow"),
        ("v1.0123456789abcdef0123456789abcdef01234567 expired", "0123456789abcdef0123456789"),
    ],
)
def test_credentials_are_redacted(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert MARK in cleaned


def test_known_secrets_are_redacted_whatever_they_look_like() -> None:
    assert redact("the password is correct-horse", ["correct-horse"]) == f"the password is {MARK}"


@pytest.mark.parametrize(
    "text",
    [
        "recipes/seal-tags/meta.yml:9:13: input.params[0].type: 'ftp' is not one of url",
        "see https://github.com/nsidc/ogdc-recipes/tree/main/recipes and a@b.example",
        "commit 0123456789abcdef0123456789abcdef01234567 by token bucket rules",
        "a bearer of news",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text

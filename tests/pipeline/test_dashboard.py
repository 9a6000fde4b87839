"""The dashboard in a real browser (Debian's Chromium through Playwright) against the real
service, real PostgreSQL, real git over HTTP and the fake GitHub and Argo.

Each page is also photographed at a laptop and a phone width into
`test-artifacts/screenshots/` (ignored by git), or `$SCREENSHOTS_DIR`, where `.ci/run`
keeps them for review."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ogdc_hooks.auth.tokens import Subject, issue_token
from ogdc_hooks.ui.session import COOKIE, session_key
from tests.pipeline.conftest import META, SCRIPT, Stack, push_payload, wait_for
from tests.support.service import DEFAULT_SECRETS

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# .ci/run points SCREENSHOTS_DIR at its source tree's, since its clone is removed afterwards
SHOTS = Path(
    os.environ.get("SCREENSHOTS_DIR")
    or Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)
WIDTHS = {"laptop": (1280, 800), "phone": (390, 844)}
WAIT_MS = 30_000  # bound of every wait for the page to show something
PASSWORD = "a-long-password"  # Stack.add_user's
UNDER_WAY = re.compile(r"^(submitted|running)$")
ATTACK = "<img src=x onerror=alert(1)>"  # shown as text, or it would call alert()
BROKEN_META = """\
name: "Broken"
workflow:
  type: nonsense
input:
  params:
    - type: url
      value: "https://data.example.org/x.tif"
"""  # line 3 is the problem
PARALLEL_META = """\
name: "Parallel"
workflow:
  type: shell
  parallel:
    enabled: true
input:
  params:
    - type: url
      value: "https://data.example.org/a.tif"
    - type: url
      value: "https://data.example.org/b.tif"
    - type: url
      value: "https://data.example.org/c.tif"
output:
  type: temporary
"""


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium: apt-get install -y chromium (.ci/run does)")
    async with playwright_api.async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            await launched.close()


async def _page(browser: Any) -> tuple[Any, list[str]]:
    """A fresh browser context's page, and the dialogs (alert()) it opens: none, ever."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    dialogs: list[str] = []

    async def refuse(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", refuse)
    return page, dialogs


async def _shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width_name, (width, height) in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=SHOTS / f"{name}-{width_name}.png", full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 800})


async def _sign_in(page: Any, ui: str, user: str, password: str) -> None:
    await page.goto(ui)
    await page.fill("#username", user)
    await page.fill("#password", password)
    await page.click("form.login button")


async def _push(stack: Stack, files: dict[str, str], *, redeliveries: int = 0) -> str:
    """Push a commit adding `files` to the `recipes` repository, accepted (and delivered
    again `redeliveries` times, each already received); its sha."""
    before = stack.git.commit("recipes", {"README.md": "recipes\n"})
    after = stack.git.commit("recipes", files)
    payload = push_payload(stack.git, before=before, after=after)
    delivery = f"push-{after}"
    assert (await stack.deliver(payload, delivery=delivery))[0] == 202
    for _ in range(redeliveries):
        answer = await stack.deliver(payload, delivery=delivery)
        assert answer == (200, {"detail": "already received", "delivery": delivery})
    return after


def _row(page: Any, recipe: str) -> Any:
    return page.locator("tr[data-run]", has_text=recipe)


async def test_author_watches_a_push_live_and_reads_why_it_failed(
    stack: Stack, browser: Any
) -> None:
    ui = stack.service.url + "/ui/"
    page, dialogs = await _page(browser)

    answer = await page.goto(ui)
    assert "/ui/login" in page.url  # nothing is shown to someone not signed in
    assert "'unsafe-inline'" not in answer.headers["content-security-policy"]
    await _shoot(page, "login")
    await _sign_in(page, ui, "author", "not-the-password")
    await expect(page.locator(".error")).to_have_text("Incorrect username or password.")
    await _sign_in(page, ui, "author", PASSWORD)
    await expect(page.locator("h1")).to_have_text("Runs")
    await page.keyboard.press("Tab")  # the keyboard's first stop skips to the content
    await expect(page.locator("a.skip")).to_be_focused()
    [cookie] = [c for c in await page.context.cookies() if c["name"] == COOKIE]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Strict", False)

    after = await _push(
        stack,
        {
            "recipes/sea-ice/meta.yml": META,
            "recipes/sea-ice/recipe.sh": SCRIPT,
            "recipes/broken/meta.yml": BROKEN_META,
            "recipes/broken/recipe.sh": SCRIPT,
        },
    )
    # the page was not reloaded: its script brings the runs in as they are made
    await expect(page.locator("tr[data-run]")).to_have_count(2, timeout=WAIT_MS)
    await expect(_row(page, "recipes/broken").locator(".badge")).to_have_text(
        "invalid", timeout=WAIT_MS
    )
    [name] = await wait_for(lambda: stack.argo.created, what="the workflow in Argo")
    stack.argo.set_phase(
        name, "Failed", message=ATTACK, failed_nodes={"step-0": f"{ATTACK} exit code 1"}
    )
    await expect(_row(page, "recipes/sea-ice").locator(".badge")).to_have_text(
        "failed", timeout=WAIT_MS
    )
    commit_link = _row(page, "recipes/sea-ice").locator("a", has_text=f"@{after[:7]}")
    assert (await commit_link.get_attribute("href")).endswith(f"/qgnet/recipes/commit/{after}")
    started = page.locator("tr[data-run] time").first  # shown in the viewer's zone
    await expect(started).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\dT"))
    await _shoot(page, "runs")

    await page.goto(ui + "?state=invalid")
    await expect(page.locator("tr[data-run]")).to_have_count(1)
    await page.goto(ui + "?recipe=recipes/sea-ice&branch=main&pusher=author")
    await expect(page.locator("tr[data-run]")).to_have_count(1)
    await page.goto(ui + "?branch=other")
    await expect(page.locator("tbody")).to_have_text("No runs match.")
    answer = await page.goto(ui + "?from=yesterday")
    assert answer.status == 422
    await expect(page.locator(".error")).to_contain_text("from: a date as YYYY-MM-DD")

    await page.goto(ui)
    await _row(page, "recipes/broken").locator("a", has_text="recipes/broken").click()
    problem = page.locator(".problems a", has_text="recipes/broken/meta.yml:3")
    assert (await problem.get_attribute("href")).endswith(
        f"/qgnet/recipes/blob/{after}/recipes/broken/meta.yml#L3"
    )
    await expect(page.locator(".timeline li")).to_have_count(2)  # queued, invalid
    await _shoot(page, "run-invalid")

    await page.goto(ui)
    await _row(page, "recipes/sea-ice").locator("a", has_text="Run").click()
    await expect(page.locator(".facts .message")).to_contain_text(ATTACK)  # text, inert
    assert await page.locator("main img").count() == 0
    await expect(page.locator(".yaml .highlight")).to_contain_text("apiVersion")
    await _shoot(page, "run-failed")

    await page.goto(ui + "recipes")
    await expect(page.locator("table.recipes tbody tr")).to_have_count(2)
    sea_ice = page.locator("table.recipes tbody tr", has_text="recipes/sea-ice")
    await expect(sea_ice.locator("td").nth(2)).to_have_text("failed")
    await expect(sea_ice.locator(".strip li")).to_have_count(1)
    await expect(sea_ice.locator("td").nth(4)).to_have_text("0%")
    await _shoot(page, "recipes")

    refused = await page.goto(ui + "admin")
    assert refused.status == 403
    await expect(page.locator(".error")).to_have_text("This page is for admins only.")
    forged = await page.request.post(ui + "logout", form={"csrf": "not-the-token"})
    assert forged.status == 403
    await page.goto(ui)
    await expect(page.locator("h1")).to_have_text("Runs")  # still signed in

    await page.click("form.signout button")
    await expect(page.locator("h1")).to_have_text("Sign in")
    await page.goto(ui)
    assert "/ui/login" in page.url
    assert dialogs == []


def _session_cookie(user_id: int, version: int, *, token_at: datetime, cookie_at: datetime) -> str:
    """The cookie the service would have set: its token issued at `token_at`, encrypted at
    `cookie_at` (the test knows the key, as the service derives it from the token key)."""
    key = DEFAULT_SECRETS["OGDC_JWT_SECRET_KEY"]
    token = issue_token(Subject("author", user_id, version), key, token_at).token
    data = {"created": int(cookie_at.timestamp()), "session": {"token": token, "csrf": "x"}}
    fernet = session_key(key)
    return fernet.encrypt_at_time(json.dumps(data).encode(), int(cookie_at.timestamp())).decode()


async def test_partitions_admin_names_and_session_expiry(stack: Stack, browser: Any) -> None:
    ui = stack.service.url + "/ui/"
    await _push(
        stack,
        {
            "recipes/parallel/meta.yml": PARALLEL_META,
            "recipes/parallel/recipe.sh": "cp $INPUT_FILE $OUTPUT_FILE\n",
            f"recipes/{ATTACK}/meta.yml": META,
            f"recipes/{ATTACK}/recipe.sh": SCRIPT,
        },
        redeliveries=2,
    )
    tag = {"ref": "refs/tags/v1", "after": "1" * 40, "repository": {"full_name": "qgnet/recipes"}}
    assert (await stack.deliver(tag, delivery="tag-1"))[0] == 200  # ignored, now recorded

    def parallel() -> list[dict[str, Any]]:
        workflows = stack.argo.workflows()
        return [
            w
            for w in workflows
            if w["metadata"]["annotations"]["ogdc/recipe-path"].endswith("/parallel")
        ]

    [workflow] = await wait_for(parallel, what="the parallel workflow in Argo")
    name = workflow["metadata"]["name"]
    spec = workflow["spec"]
    [entry] = [t for t in spec["templates"] if t["name"] == spec["entrypoint"]]
    [fan_out] = [
        t["name"] for t in entry["dag"]["tasks"] if "withSequence" in t or "withParam" in t
    ]
    stack.argo.set_phase(
        name,
        "Running",
        nodes={
            f"{fan_out}(0:0)": "Succeeded",
            f"{fan_out}(1:1)": "Running",
            f"{fan_out}(2:2)": "Failed",
        },
    )

    page, dialogs = await _page(browser)
    await _sign_in(page, ui, "admin", DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"])
    await expect(page.locator("tr[data-run]")).to_have_count(2, timeout=WAIT_MS)
    await expect(_row(page, ATTACK).locator("td").first).to_have_text(f"recipes/{ATTACK}")
    await _row(page, "recipes/parallel").locator("a", has_text="recipes/parallel").click()
    partition = page.locator("table.partitions tbody tr", has_text=fan_out)
    await expect(partition.locator("td")).to_have_text([fan_out, "1", "1", "1", "3"])
    await expect(page.locator(".steps")).to_contain_text("one task per partition")
    await _shoot(page, "run-parallel")

    connection = await stack.database()
    try:
        await wait_for(
            lambda: connection.fetchval("SELECT state = 'done' FROM jobs WHERE kind = 'push'"),
            what="the push's job done",
        )
    finally:
        await connection.close()
    await page.goto(ui + "admin")
    await expect(page.locator("table.users")).to_contain_text("author")
    deliveries = page.locator("table.deliveries tbody tr")
    await expect(deliveries).to_have_count(2)
    await expect(page.locator("table.deliveries")).to_contain_text("recipes/parallel")
    pushed = deliveries.filter(has_text="push-").locator("td")
    answered = re.compile(r"^202 accepted; \+ 2 redeliveries answered 200, last at \S.+$")
    await expect(pushed.nth(5)).to_have_text(answered)  # the time in the reader's own zone
    last = await pushed.nth(5).locator("time").get_attribute("datetime")
    received = await pushed.nth(0).locator("time").get_attribute("datetime")
    assert datetime.fromisoformat(last) >= datetime.fromisoformat(received)
    await expect(pushed.nth(6)).to_have_text("done")
    ignored = deliveries.filter(has_text="tag-1").locator("td")
    await expect(ignored.nth(5)).to_have_text("200 ignored (event not handled)")
    await expect(ignored.nth(6)).to_have_text("none")
    await expect(ignored.nth(7)).to_have_text("none")  # no runs
    await _shoot(page, "admin")
    row = page.locator("table.users tr", has_text="author")
    await row.locator("button", has_text="Disable").click()
    await expect(row.locator("td").nth(3)).to_have_text("disabled")
    assert dialogs == []

    # the author's old session (a token of 31 minutes ago) and a cookie of then are refused
    await row.locator("button", has_text="Enable").click()
    await expect(row.locator("td").nth(3)).to_have_text("yes")
    create = page.locator("form[action$='/admin/users']")
    await create.locator("[name=username]").fill("newcomer")
    await create.locator("[name=password]").fill("another-long-password")
    await create.locator("[name=login]").fill("newcomer-gh")
    await create.locator("button").click()
    newcomer = page.locator("table.users tr", has_text="newcomer")
    await expect(newcomer.locator("td").nth(1)).to_have_text(re.compile(r": newcomer-gh$"))
    await newcomer.locator("[name=login]").fill("-not-a-login-")
    async with page.expect_response(lambda r: r.url.endswith("/logins")) as refused_change:
        await newcomer.locator("button", has_text="Set login").click()
    assert (await refused_change.value).status == 422
    await expect(page.locator(".error")).to_contain_text("forge_logins")
    connection = await stack.database()
    try:
        user_id, version = await connection.fetchrow(
            "SELECT id, token_version FROM users WHERE name = 'author'"
        )
    finally:
        await connection.close()
    now = datetime.now(UTC)
    late = now - timedelta(minutes=31)
    for cookie_at in (now, late):
        context = await browser.new_context()
        value = _session_cookie(user_id, version, token_at=late, cookie_at=cookie_at)
        await context.add_cookies([{"name": COOKIE, "value": value, "url": ui}])
        expired = await context.new_page()
        await expired.goto(ui)
        assert "/ui/login" in expired.url
        await expect(expired.locator(".notice")).to_have_text(
            "Your session has expired; sign in again."
        )
        await context.close()
    fresh = _session_cookie(user_id, version, token_at=now, cookie_at=now)  # the same, but current
    context = await browser.new_context()
    await context.add_cookies([{"name": COOKIE, "value": fresh, "url": ui}])
    current = await context.new_page()
    await current.goto(ui)
    await expect(current.locator(".who")).to_have_text("author")
    await context.close()
    # behind a proxy that terminated https, the cookie is Secure
    headers = {"X-Forwarded-Proto": "https"}
    async with stack.session.get(ui + "login", headers=headers) as answer:
        assert answer.status == 200
        assert answer.cookies[COOKIE]["secure"] is True


async def test_the_requester_cancels_retries_and_reruns_from_the_run_page(
    stack: Stack, browser: Any
) -> None:
    ui = stack.service.url + "/ui/"
    await stack.add_user("bystander", "bystander-gh")
    await _push(
        stack,
        {
            "recipes/sea-ice/meta.yml": META,
            "recipes/sea-ice/recipe.sh": SCRIPT,
            "recipes/snow/meta.yml": META,
            "recipes/snow/recipe.sh": SCRIPT,
        },
    )
    names = await wait_for(lambda: len(stack.argo.created) == 2 and stack.argo.created)

    def workflow_of(recipe: str) -> str:
        [name] = [
            n
            for n in names
            if stack.argo.workflow(n)["metadata"]["annotations"]["ogdc/recipe-path"]
            == f"recipes/{recipe}"
        ]
        return name

    page, dialogs = await _page(browser)
    await _sign_in(page, ui, "author", PASSWORD)
    await expect(_row(page, "recipes/snow").locator(".badge")).to_have_text(
        UNDER_WAY, timeout=WAIT_MS
    )
    await _row(page, "recipes/snow").locator("a", has_text="recipes/snow").click()
    snow_page = page.url
    actions = page.locator("section[aria-labelledby=actions-h] button")
    await expect(actions).to_have_text(["Cancel"])
    await _shoot(page, "run-actions")
    await actions.click()
    await expect(page.locator("h1 .badge")).to_have_text("cancelled", timeout=WAIT_MS)
    await expect(page.locator(".facts .message")).to_contain_text("Cancelled by author")
    await expect(actions).to_have_text(["Re-run"])  # ended: only running it anew is left
    stopped = workflow_of("snow")
    await wait_for(
        lambda: stack.argo.workflow(stopped)["spec"].get("shutdown") == "Stop",
        what="the cancelled run's workflow stopped",
    )
    await actions.click()  # Re-run: a new attempt, and its page
    await expect(page.locator(".facts")).to_contain_text("2 (rerequest)", timeout=WAIT_MS)
    assert page.url != snow_page
    await wait_for(lambda: len(stack.argo.created) == 3, what="the re-run's workflow")
    await page.goto(snow_page)
    await expect(page.locator("h1 .badge")).to_have_text("cancelled")  # the original stays

    failing = workflow_of("sea-ice")
    stack.argo.set_phase(failing, "Failed", failed_nodes={"step-0": "exit code 1"})
    await page.goto(ui)
    await expect(_row(page, "recipes/sea-ice").locator(".badge")).to_have_text(
        "failed", timeout=WAIT_MS
    )
    await _row(page, "recipes/sea-ice").locator("a", has_text="recipes/sea-ice").click()
    sea_ice_page = page.url
    await expect(actions).to_have_text(["Retry failed steps", "Re-run"])
    forged = await page.request.post(sea_ice_page + "/retry", form={"csrf": "not-the-token"})
    assert forged.status == 403  # CSRF refused: nothing retried
    assert stack.argo.count("PUT", f"/api/v1/workflows/qgnet/{failing}/retry") == 0
    await actions.filter(has_text="Retry failed steps").click()
    await expect(page.locator("h1 .badge")).to_have_text(UNDER_WAY, timeout=WAIT_MS)
    assert stack.argo.count("PUT", f"/api/v1/workflows/qgnet/{failing}/retry") == 1

    other, _ = await _page(browser)
    await _sign_in(other, ui, "bystander", PASSWORD)
    await expect(other.locator("h1")).to_have_text("Runs")
    await other.goto(snow_page)
    await expect(other.locator("section[aria-labelledby=actions-h]")).to_contain_text(
        "No action is available for this run here."
    )
    own_csrf = await other.locator("form.signout input[name=csrf]").input_value()
    refused = await other.request.post(sea_ice_page + "/cancel", form={"csrf": own_csrf})
    assert refused.status == 403  # a valid form, but not the requester's nor an admin's
    await other.goto(sea_ice_page)
    await expect(other.locator("h1 .badge")).to_have_text(UNDER_WAY)  # not cancelled
    assert dialogs == []

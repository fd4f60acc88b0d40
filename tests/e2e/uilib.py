"""The web UI in Debian's Chromium, driven by Playwright (never a downloaded
browser): a gateway in front of the private dockerd with one user per role,
a browser signed in through the UI's own form, and screenshots of each
screen (and of every failure) kept in ``target/e2e-artifacts/ui/``.

Fixtures (used by the ``test_ui_*.py`` files):

* ``ui_gw``: the gateway; ``ui_gw.origin``, ``ui_gw.users`` (name ->
  password for ``admin``, ``reader`` and ``operator``, whose roles are their
  names, ``reader`` being ``read``), ``ui_gw.tokens`` (role -> API token).
* ``browser``: one Chromium for the whole session.
* ``ui``: a fresh browser context and page signed in as ``admin``;
  ``ui.page``, ``ui.goto("#/containers")``, ``ui.shot("name")``,
  ``ui.sign_in(user)`` (in a new context: returns another ``UI``),
  ``ui.throttle(down=, up=)`` and ``ui.cancel(job)`` for long work.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

import authlib
import helpers

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = helpers.REPO / "target" / "e2e-artifacts" / "ui"
# router.test is a name of the loopback address that, unlike 127.0.0.1, is
# no trustworthy origin over plain http: as a router's LAN address is not.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP router.test 127.0.0.1"]
ROLES = {"admin": "admin", "reader": "read", "operator": "operator"}


class UIGateway:
    def __init__(self, gw, users, tokens):
        self.gw = gw
        self.users = users
        self.tokens = tokens
        self.origin = "http://127.0.0.1:%d" % gw.addr[1]


class UI:
    """One signed-in browser context and its page."""

    def __init__(self, context, gw: UIGateway, name: str):
        self.context = context
        self.gw = gw
        self.name = name
        self.page = context.new_page()

    def goto(self, hash_route: str = ""):
        self.page.goto(self.gw.origin + "/_dockermand/ui/" + hash_route)
        return self.page

    def shot(self, name: str):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
        self.page.screenshot(path=str(ARTIFACTS / (safe + ".png")), full_page=True)

    def throttle(self, down: int = -1, up: int = -1):
        """Holds the page's network to ``down`` and ``up`` bytes per second
        (-1: unlimited), as DevTools' network throttling does."""
        self._cdp = self.context.new_cdp_session(self.page)
        self._cdp.send("Network.enable")
        self._cdp.send("Network.emulateNetworkConditions",
                       {"offline": False, "latency": 0, "downloadThroughput": down, "uploadThroughput": up})

    def cancel(self, job):
        """Cancels the long work whose progress line is in ``job``, sees it
        shown as cancelled, and waits until the gateway has closed the
        connection the work used: the browser really dropped it."""
        def active():
            return authlib.status(self.gw.gw, self.gw.tokens["admin"])["connections"]["active"]
        before = active()
        job.get_by_role("button", name="Cancel").click()
        expect(job).to_contain_text("cancelled")
        expect(job.get_by_role("button", name="Cancel")).to_have_count(0)
        helpers.wait_until(lambda: active() < before, 30, "the gateway to close the cancelled work's connection")

    def sign_in_form(self, user: str):
        """Signs in through the UI's own form."""
        page = self.goto("#/login")
        form = page.locator("#login-password")
        form.get_by_label("User").fill(user)
        form.get_by_label("Password").fill(self.gw.users[user])
        form.get_by_role("button", name="Sign in").click()
        page.locator("#role").wait_for()
        assert page.text_content("#user") == "user:" + user
        assert page.text_content("#role") == ROLES[user]


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("%s is missing (tests/run.sh installs Debian's chromium)" % CHROMIUM)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def ui_gw(gateway_factory, dockerd, tmp_path) -> UIGateway:
    users = {name: authlib.new_token("pw") for name in ROLES}
    tokens = {role: authlib.new_token(role) for role in ("admin", "read")}
    cfg = authlib.auth_config(
        tokens=tokens,
        users=[{"name": n, "password": authlib.hash_password(pw), "role": ROLES[n]} for n, pw in users.items()])
    gw = authlib.start_gateway(gateway_factory, authlib.write_config(tmp_path, cfg), dockerd.url)
    return UIGateway(gw, users, tokens)


@pytest.fixture
def ui_factory(browser, ui_gw, request):
    """``ui_factory(user)``: a new context signed in as ``user`` through the
    sign-in form (``None``: not signed in). Every page is screenshotted if
    the test fails."""
    made = []

    def make(user="admin", viewport=None):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900},
                                      accept_downloads=True)
        context.set_default_timeout(20000)
        u = UI(context, ui_gw, user or "nobody")
        made.append(u)
        if user:
            u.sign_in_form(user)
        return u

    yield make
    from conftest import _test_failed
    failed = _test_failed(request)
    for i, u in enumerate(made):
        if failed:
            try:
                u.shot("FAILED-%s-%d" % (request.node.name, i))
            except Exception as e:  # the page may be gone; the failure itself is reported
                print("no failure screenshot: %s" % e)
        u.context.close()


@pytest.fixture
def ui(ui_factory) -> UI:
    return ui_factory("admin")

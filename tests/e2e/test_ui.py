"""The web UI's serving and sign-in, against the real dockerd and Debian's
Chromium: assets from the binary, gzip'd or inflated, cached by ETag and
hashed names, under a strict CSP; a flag that turns the UI off; sign-in by
password, router account (the stand-in ubus), pasted token and one-time
ticket; logout; the user's name and role always shown."""

import gzip
import json
import re

import pytest

import authlib
import helpers

CSP_DIRECTIVES = {
    "default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "connect-src": "'self'",
    "object-src": "'none'", "base-uri": "'none'",
}


def get(gw, target, headers=()):
    return authlib.request(gw, "GET", target, list(headers))


def csp(resp) -> dict:
    value = resp.header("Content-Security-Policy") or ""
    return {d.split()[0]: " ".join(d.split()[1:]) for d in value.split(";") if d.strip()}


def asset_names(page: bytes) -> list[str]:
    return re.findall(rb'(?:src|href)="(app\.[0-9a-f]{16}\.(?:js|css))"', page)


def test_assets_are_served_gzipd_or_inflated_with_validators(ui_gw):
    gw = ui_gw.gw
    r = get(gw, "/", [("Accept", "text/html,application/xhtml+xml")])
    assert r.status == 303 and r.header("Location") == "/_dockermand/ui/", r
    # a Docker client at / is not redirected: the API has no route there
    assert get(gw, "/", authlib.bearer(ui_gw.tokens["admin"])).status in (400, 403, 404)

    page = get(gw, "/_dockermand/ui/")
    assert page.status == 200 and page.header("Content-Type").startswith("text/html"), page
    assert page.header("Cache-Control") == "no-cache"
    names = asset_names(page.body)
    assert len(names) == 2, page.body
    # nothing from elsewhere: no CDN, no external fonts (the icon is an
    # empty data: URL, so the browser asks nobody for /favicon.ico)
    assert not re.search(rb"(?:src|href)=\"(?!app\.|#|data:,\")", page.body)
    for resp in [page] + [get(gw, "/_dockermand/ui/" + n.decode()) for n in names]:
        assert resp.header("X-Content-Type-Options") == "nosniff", resp
        assert resp.header("Referrer-Policy") == "no-referrer", resp
        policy = csp(resp)
        assert {k: policy.get(k) for k in CSP_DIRECTIVES} == CSP_DIRECTIVES, policy
        assert policy["frame-ancestors"] == "'none'", policy
        assert b"http://" not in resp.body and b"https://" not in resp.body, "external address in an asset"

    for name in names:
        target = "/_dockermand/ui/" + name.decode()
        plain = get(gw, target)
        zipped = get(gw, target, [("Accept-Encoding", "gzip, deflate, br")])
        assert plain.status == zipped.status == 200
        assert plain.header("Content-Encoding") is None
        assert zipped.header("Content-Encoding") == "gzip"
        assert "immutable" in plain.header("Cache-Control") and "max-age=31536000" in plain.header("Cache-Control")
        assert gzip.decompress(zipped.body) == plain.body and len(zipped.body) < len(plain.body)
        assert plain.header("Vary") == "Accept-Encoding"
        # gzip refused by q=0: inflated on the fly
        assert get(gw, target, [("Accept-Encoding", "gzip;q=0, identity")]).body == plain.body
        for resp in (plain, zipped):
            etag = resp.header("ETag")
            again = get(gw, target, [("If-None-Match", etag)] +
                        ([("Accept-Encoding", "gzip")] if resp is zipped else []))
            assert again.status == 304 and again.body == b"" and again.header("ETag") == etag, again
        assert plain.header("ETag") != zipped.header("ETag")
        head = authlib.request(gw, "HEAD", target)
        assert head.status == 200 and head.body == b"" and int(head.header("Content-Length")) == len(plain.body)

    assert get(gw, "/_dockermand/ui/app.0000000000000000.js").status == 404
    r = authlib.request(gw, "POST", "/_dockermand/ui/", [("Content-Type", "application/json")], b"{}")
    assert r.status == 405 and "message" in json.loads(r.body), r


def test_an_asset_of_several_segments_inflates_whole(ui_gw):
    """Inflated a segment (16 KiB) at a time, one per loop turn: the client
    gets every byte, the same bytes gzip gives."""
    gw = ui_gw.gw
    page = get(gw, "/_dockermand/ui/").body
    script = [n.decode() for n in asset_names(page) if n.endswith(b".js")][0]
    zipped = get(gw, "/_dockermand/ui/" + script, [("Accept-Encoding", "gzip")]).body
    plain = gzip.decompress(zipped)
    assert len(plain) > 2 * 16384, "the script should span several segments"
    with gw.connect(timeout=30) as c:
        for _ in range(2):  # twice on one connection: the reply ends where it should
            c.send(helpers.build_request("GET", "/_dockermand/ui/" + script))
            r = c.read_response()
            assert r.status == 200 and r.body == plain


def test_frame_ancestors_follow_cors_origins_and_the_ui_can_be_turned_off(gateway_factory, dockerd, tmp_path):
    origin = "http://router.lan"
    cfg = authlib.auth_config(tokens={"admin": authlib.new_token("a")}, cors_origins=[origin])
    gw = authlib.start_gateway(gateway_factory, authlib.write_config(tmp_path, cfg, "on.json"), dockerd.url)
    assert csp(get(gw, "/_dockermand/ui/"))["frame-ancestors"] == origin

    off = dict(cfg, ui=False)
    for args, path in (([], authlib.write_config(tmp_path, off, "off.json")),
                       (["--no-ui"], authlib.write_config(tmp_path, cfg, "flag.json"))):
        gw = authlib.start_gateway(gateway_factory, path, dockerd.url, args=args)
        r = get(gw, "/_dockermand/ui/")
        assert r.status == 401 and b"<html" not in r.body, r
        r = get(gw, "/", [("Accept", "text/html")])
        assert r.status != 303 and r.header("Location") is None, r


def test_password_sign_in_shows_name_and_role_and_logout_ends_the_session(ui_factory, ui_gw):
    ui = ui_factory("reader")
    page = ui.page
    assert page.text_content("#user") == "user:reader" and page.text_content("#role") == "read"
    ui.shot("signed-in-reader")
    cookie = [c for c in ui.context.cookies() if c["name"] == "dockermand_session"][0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    # the session's secret is the cookie and the page's binding together
    session = [("Cookie", "dockermand_session=" + cookie["value"]),
               ("X-Dockermand-Binding", page.evaluate("localStorage.getItem('dockermand-binding')"))]
    assert get(ui_gw.gw, "/_dockermand/whoami", session).status == 200
    assert get(ui_gw.gw, "/_dockermand/whoami", session[:1]).status == 401
    page.get_by_role("button", name="Log out").click()
    page.locator("#login-password").wait_for()
    assert page.locator("#user").count() == 0
    assert page.evaluate("localStorage.getItem('dockermand-binding')") is None
    r = get(ui_gw.gw, "/_dockermand/whoami", session)
    assert r.status == 401, r


def test_wrong_password_is_shown_and_enter_submits(ui_factory):
    ui = ui_factory(None)
    page = ui.goto("#/login")
    form = page.locator("#login-password")
    form.get_by_label("User").fill("admin")
    form.get_by_label("Password").fill("not the password")
    form.get_by_label("Password").press("Enter")
    page.get_by_role("alert").wait_for()
    assert "wrong user name or password" in page.get_by_role("alert").text_content()
    assert "undefined" not in page.content()
    ui.shot("sign-in-refused")


def test_pasted_token_signs_in(ui_factory, ui_gw):
    ui = ui_factory(None)
    page = ui.goto("#/login")
    form = page.locator("#login-token")
    form.get_by_label("Token").fill(ui_gw.tokens["read"])
    form.get_by_role("button", name="Sign in").click()
    page.locator("#role").wait_for()
    assert (page.text_content("#user"), page.text_content("#role")) == ("token:read", "read")
    # the token itself is not kept by the page: only the HttpOnly cookie
    assert ui_gw.tokens["read"] not in json.dumps(page.evaluate("({...localStorage, ...sessionStorage})"))


def test_one_time_ticket_signs_in_and_leaves_the_address_bar(ui_factory, ui_gw):
    gw = ui_gw.gw
    r = authlib.request(gw, "POST", "/_dockermand/ticket", authlib.bearer(ui_gw.tokens["admin"]))
    assert r.status == 200, r
    ticket = json.loads(r.body)["ticket"]
    page = ui_factory(None).page
    page.goto(ui_gw.origin + "/_dockermand/ui/?ticket=%s#/overview" % ticket)
    page.locator("#role").wait_for()
    assert "ticket" not in page.url and page.url.endswith("/_dockermand/ui/#/overview"), page.url
    assert (page.text_content("#user"), page.text_content("#role")) == ("token:admin", "admin")
    # spent: a second browser with the same ticket lands at the sign-in
    page = ui_factory(None).page
    page.goto(ui_gw.origin + "/_dockermand/ui/?ticket=" + ticket)
    page.locator("#login-password").wait_for()
    assert "ticket" not in page.url


def test_no_page_can_hand_a_browser_a_session_through_its_address(browser, ui_gw):
    """A page on another port of the host can set the session cookie
    (browsers keep cookies per host), and can send the browser to any
    address; with a session of its author's, both halves, the browser still
    lands signed out: the page takes a binding only from a sign-in's reply."""
    r = authlib.request(ui_gw.gw, "POST", "/_dockermand/login", [("Content-Type", "application/json")],
                        json.dumps({"token": ui_gw.tokens["read"]}).encode())
    (_, cookie), (_, binding) = authlib.session_headers(r)
    context = browser.new_context()
    try:
        context.add_cookies([{"name": "dockermand_session", "value": cookie.split("=", 1)[1],
                              "url": ui_gw.origin}])
        page = context.new_page()
        for address in ("/_dockermand/ui/#binding=" + binding, "/_dockermand/ui/?binding=" + binding):
            page.goto(ui_gw.origin + address)
            page.locator(".screen-login").wait_for()
            assert page.evaluate("localStorage.getItem('dockermand-binding')") is None
    finally:
        context.close()


@pytest.mark.parametrize("gateway_host", ["127.0.0.1", "router.test"])
def test_a_ticket_signs_in_only_when_a_cors_origin_sent_the_browser(browser, gateway_factory, dockerd, tmp_path,
                                                                   gateway_host):
    """Any page can send a browser to the UI with a ticket of its author's.
    The gateway signs it in only when a ``cors_origins`` page (LuCI) sent
    it, and refuses and spends the ticket of any other page, including one
    that hides where it is. Chromium says where a navigation started
    (``Sec-Fetch-Site``) only to trustworthy origins such as 127.0.0.1,
    and not to a LAN name over plain http (``router.test`` here), as on a
    router. The opening pages are served by the browser's request routing
    at their own origins, so Chromium computes both headers as it would
    for real ones."""
    luci = "http://luci.test"
    token = authlib.new_token("admin")
    cfg = authlib.auth_config(tokens={"admin": token}, cors_origins=[luci], allowed_hosts=["router.test"])
    gw = authlib.start_gateway(gateway_factory, authlib.write_config(tmp_path, cfg), dockerd.url)
    origin = "http://%s:%d" % (gateway_host, gw.addr[1])
    contexts, tickets = [], []

    def follow_link(from_origin, page_head=""):
        """Follows a link to the UI with a fresh ticket on a page of
        ``from_origin``; returns the ticket and the principal the UI shows
        (``None``: its sign-in screen)."""
        r = authlib.request(gw, "POST", "/_dockermand/ticket", authlib.bearer(token))
        ticket = json.loads(r.body)["ticket"]
        tickets.append(ticket)
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        body = '%s<a id="go" href="%s/_dockermand/ui/?ticket=%s">open</a>' % (page_head, origin, ticket)
        page.route(from_origin + "/", lambda route: route.fulfill(content_type="text/html", body=body))
        page.goto(from_origin + "/")
        page.click("#go")
        return ticket, shown_principal(page)

    def shown_principal(page):
        page.locator("#role:visible, .screen-login").first.wait_for()
        assert "ticket" not in page.url, page.url
        cookie = any(c["name"] == "dockermand_session" for c in page.context.cookies(origin))
        assert cookie == page.locator("#role").is_visible()
        return page.text_content("#user") if cookie else None

    try:
        assert follow_link(luci)[1] == "token:admin"
        # another site, a page on another port of the gateway's host (as a
        # container's published web page is), and a page that hides where
        # it is: refused, and the ticket is spent
        hidden = '<meta name="referrer" content="no-referrer">'
        for foreign, page_head in (("http://evil.test", ""), ("http://%s:9" % gateway_host, ""),
                                   ("http://evil.test", hidden), (luci, hidden)):
            ticket, principal = follow_link(foreign, page_head)
            assert principal is None, (foreign, page_head)
            context = browser.new_context()
            contexts.append(context)
            page = context.new_page()
            page.goto(origin + "/_dockermand/ui/?ticket=" + ticket)
            assert shown_principal(page) is None
        # logs, which may leave the router, show where tickets were, not them
        log = gw.output()
        assert '"GET /_dockermand/ui/?ticket=-" 303 local' in log, log
        assert not [t for t in tickets if t in log]
    finally:
        for context in contexts:
            context.close()


@pytest.mark.parametrize("write,role", [(True, "operator"), (False, "read")])
def test_router_account_signs_in_through_rpcd(browser, gateway_factory, dockerd, tmp_path, write, role):
    ubus = authlib.Ubus(tmp_path / "ubus")
    password = authlib.new_token("root")
    sid = ubus.add_user("root", password, read=True, write=write)
    cfg = authlib.auth_config(rpcd={"enabled": True, "ubus": ubus.exe})
    gw = authlib.start_gateway(gateway_factory, authlib.write_config(tmp_path, cfg), dockerd.url, env=ubus.env)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto("http://127.0.0.1:%d/_dockermand/ui/#/login" % gw.addr[1])
        form = page.locator("#login-router")
        form.get_by_label("Password").fill("wrong")
        form.get_by_role("button", name="Sign in").click()
        page.get_by_role("alert").wait_for()
        assert "wrong user name or password" in page.get_by_role("alert").text_content()
        form.get_by_label("Password").fill(password)
        form.get_by_role("button", name="Sign in").click()
        page.locator("#role").wait_for()
        assert (page.text_content("#user"), page.text_content("#role")) == ("router:root", role)
    finally:
        context.close()
    # the password went to rpcd's login, and the new session's access decided the role
    calls = ubus.calls()
    assert [c["function"] for c in calls if c["function"] == "login"] == ["login", "login"], calls
    assert any(c["session"] == sid and c["function"] == "write" for c in calls), calls

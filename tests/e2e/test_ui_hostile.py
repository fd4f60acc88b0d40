"""The web UI's sign-in against hostile clients: router logins (checked by
rpcd through the stand-in ubus) are limited like password logins, from the
moment they start, and a router user's name cannot smuggle what rpcd never
sees into dockermand's principal and logs."""

import json
import signal
import threading

import authlib


def router_login(gw, username: str, password: str):
    body = json.dumps({"username": username, "password": password, "account": "router"}).encode()
    return authlib.request(gw, "POST", "/_dockermand/login", [("Content-Type", "application/json")], body)


def router_gateway(gateway_factory, dockerd, tmp_path, **env):
    ubus = authlib.Ubus(tmp_path / "ubus")
    password = authlib.new_token("root")
    ubus.add_user("root", password, read=True, write=True)
    cfg = authlib.auth_config(rpcd={"enabled": True, "ubus": ubus.exe})
    gw = authlib.start_gateway(gateway_factory, authlib.write_config(tmp_path, cfg), dockerd.url,
                               env=dict(ubus.env, **env))
    return gw, ubus, password


def test_parallel_router_logins_count_against_their_address_from_the_start(gateway_factory, dockerd, tmp_path):
    # Each rpcd login takes a while, as it does on a router: wrong guesses
    # sent side by side are all in flight before the first is answered.
    gw, _, _ = router_gateway(gateway_factory, dockerd, tmp_path, DM_UBUS_LOGIN_DELAY="0.5")
    statuses = []
    for _ in range(3):
        wave = []
        threads = [threading.Thread(target=lambda: wave.append(router_login(gw, "root", "guess").status))
                   for _ in range(4)]  # as many as ubus children may run at once
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses += wave
    assert set(statuses) <= {401, 429}, statuses
    # five failures a minute per address, however they are sent
    assert statuses.count(401) <= 5, statuses


def test_a_router_user_name_is_what_rpcd_checked(gateway_factory, dockerd, tmp_path):
    gw, _, password = router_gateway(gateway_factory, dockerd, tmp_path)
    # ubus hands rpcd C strings: it sees "root", whose password this is,
    # while the rest of the name would become the principal's, in every
    # log line about it
    for name in ("root\u0000\n1.2.3.4 login as user:admin (admin)", "root\n", "ro\u001bot"):
        r = router_login(gw, name, password)
        assert r.status == 401, (name, r)
    r = router_login(gw, "root", password)
    assert r.status == 200 and r.json()["name"] == "router:root", r


def test_revoking_a_token_ends_the_cookies_it_became(gateway_factory, dockerd, tmp_path):
    # A token traded for a cookie (the UI's pasted token, or a ticket) must
    # not outlive the token: removing it from the config and reloading is
    # how it is revoked.
    keep, revoked = authlib.new_token("keep"), authlib.new_token("gone")
    cfg = authlib.auth_config(tokens={"admin": revoked, "read": keep})
    path = authlib.write_config(tmp_path, cfg)
    gw = authlib.start_gateway(gateway_factory, path, dockerd.url)
    body = json.dumps({"token": revoked}).encode()
    r = authlib.request(gw, "POST", "/_dockermand/login", [("Content-Type", "application/json")], body)
    assert r.status == 200, r
    cookie = authlib.session_headers(r)
    assert authlib.whoami(gw, cookie).status == 200

    authlib.write_config(tmp_path, authlib.auth_config(tokens={"read": keep}))
    gw.signal(signal.SIGHUP)
    gw.wait_for_line("configuration reloaded", 10)
    assert authlib.whoami(gw, authlib.bearer(revoked)).status == 401
    r = authlib.whoami(gw, cookie)
    assert r.status == 401, r

"""Hostile and malformed requests.

Each request is sent raw to a gateway whose upstream is a recording stand-in.
A rejection must come back as JSON ``{"message": ...}`` with the expected
status, the connection must then be closed, and the stand-in must have seen
no connection and no byte.  Afterwards a valid control request proves that
the stand-in does record traffic and that the control request is the only
thing it ever received.
"""

import pytest

from helpers import ConnectionClosed, build_request, http_request

def _expect_rejection(gw, standin, raw: bytes, statuses):
    if isinstance(statuses, int):
        statuses = (statuses,)
    with gw.connect(timeout=10) as c:
        c.send_quiet(raw)
        try:
            r = c.read_response(timeout=10)
        except ConnectionClosed as e:
            pytest.fail("connection closed without a response (got %r)" % e.partial[:200])
        except TimeoutError:
            pytest.fail("no response within 10s to %r" % raw[:120])
        assert r.status in statuses, "expected %s, got %r" % (statuses, r)
        assert "json" in (r.header("Content-Type") or ""), r
        msg = r.json().get("message")
        assert isinstance(msg, str) and msg, r
        assert c.wait_closed(5), "connection still open 5s after a %d rejection" % r.status
    assert standin.connection_count() == 0, "the upstream saw %d connection(s): %r" % (
        standin.connection_count(), standin.all_bytes()[:300])
    assert standin.total_bytes() == 0
    _control(gw, standin)
    return r


def _control(gw, standin):
    r = http_request(gw.addr, "GET", "/_ping?control=1", timeout=10)
    assert (r.status, r.body) == (200, b"OK"), r
    standin.wait_for(lambda: len(standin.requests()) >= 1, 5, "control request at the stand-in")
    reqs = standin.requests()
    assert [q.target for q in reqs] == ["/_ping?control=1"], [q.raw_head for q in reqs]
    assert standin.records[0].bytes().startswith(b"GET /_ping?control=1 HTTP/1.1\r\n")


def _post(headers: bytes, body: bytes = b"", target=b"/containers/create") -> bytes:
    return b"POST " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + headers + b"\r\n" + body


BAD_400 = {
    # framing ambiguity
    "cl-and-te": _post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "te-and-cl": _post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"),
    "cl-te-smuggle": _post(b"Content-Length: 48\r\nTransfer-Encoding: chunked\r\n",
                           b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    "two-cl-same": _post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
    "two-cl-different": _post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
    "cl-list": _post(b"Content-Length: 5, 5\r\n", b"hello"),
    "cl-plus": _post(b"Content-Length: +5\r\n", b"hello"),
    "cl-negative": _post(b"Content-Length: -1\r\n", b"hello"),
    "cl-suffix": _post(b"Content-Length: 5a\r\n", b"hello"),
    "cl-hex": _post(b"Content-Length: 0x5\r\n", b"hello"),
    "cl-inner-space": _post(b"Content-Length: 1 0\r\n", b"helloworld"),
    "cl-vertical-tab": _post(b"Content-Length: 5\x0b\r\n", b"hello"),
    "cl-form-feed": _post(b"Content-Length:\x0c5\r\n", b"hello"),
    "cl-empty": _post(b"Content-Length: \r\n", b"hello"),
    "cl-overflow": _post(b"Content-Length: 99999999999999999999999999999\r\n", b"hello"),
    "cl-u64-overflow": _post(b"Content-Length: 18446744073709551616\r\n", b"hello"),
    "te-twice": _post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "te-trailing-tab": _post(b"Transfer-Encoding: chunked\t\r\n", b"0\r\n\r\n"),
    "te-xchunked": _post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
    "te-space-comma": _post(b"Transfer-Encoding:  chunked,\r\n", b"0\r\n\r\n"),
    # header syntax
    "obs-fold": b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nX-Long: a\r\n  folded\r\n\r\n",
    "bare-lf-everywhere": b"GET /_ping HTTP/1.1\nHost: localhost\n\n",
    "bare-lf-one-line": b"GET /_ping HTTP/1.1\r\nHost: localhost\nX-A: b\r\n\r\n",
    "bare-cr-in-header": b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n",
    "nul-in-header-value": b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n",
    "space-before-colon": b"GET /_ping HTTP/1.1\r\nHost : localhost\r\n\r\n",
    "header-without-colon": b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n",
    "missing-host": b"GET /_ping HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET /_ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    # request line
    "absolute-form": b"GET http://x/_ping HTTP/1.1\r\nHost: x\r\n\r\n",
    "asterisk-form": b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "origin-without-slash": b"GET _ping HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "invalid-method-char": b"GE(T /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "double-space-before-target": b"GET  /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "double-space-before-version": b"GET /_ping  HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "trailing-space-request-line": b"GET /_ping HTTP/1.1 \r\nHost: localhost\r\n\r\n",
}

# statuses other than 400 that are also correct for a few well-formed but
# unsupported requests
ALSO_OK = {
    "te-xchunked": (501,),
    "http2-version": (505,),
    "connect": (405,),
}

BAD_400["http2-version"] = b"GET /_ping HTTP/2.0\r\nHost: localhost\r\n\r\n"
BAD_400["connect"] = b"CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n"
BAD_400["te-gzip-chunked"] = _post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n")
ALSO_OK["te-gzip-chunked"] = (501,)


@pytest.mark.parametrize("case", sorted(BAD_400))
def test_rejected_400(gw_standin, standin, case):
    _expect_rejection(gw_standin, standin, BAD_400[case], (400,) + ALSO_OK.get(case, ()))


def test_head_over_16k_is_431(gw_standin, standin):
    raw = b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n"
    _expect_rejection(gw_standin, standin, raw, 431)


def test_unterminated_head_over_16k_is_431_without_waiting(gw_standin, standin):
    # the head never ends: the gateway must answer as soon as the limit is passed
    raw = b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 20000
    _expect_rejection(gw_standin, standin, raw, 431)


def test_long_request_line_is_rejected(gw_standin, standin):
    raw = b"GET /_ping?" + b"q" * 17000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    _expect_rejection(gw_standin, standin, raw, (431, 414))


def test_too_many_headers_is_431(gw_standin, standin):
    raw = b"GET /_ping HTTP/1.1\r\nHost: localhost\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(101)) + b"\r\n"
    _expect_rejection(gw_standin, standin, raw, 431)


def test_limits_are_inclusive_controls(gw_standin, standin):
    """Exactly 100 headers and a 15 KiB head are still forwarded."""
    headers = [("X-H%d" % i, "v") for i in range(99)]  # + Host = 100
    r = http_request(gw_standin.addr, "GET", "/containers/standin-hundred/json", headers)
    assert r.status == 200, r
    assert len(r.json()["headers"]) >= 100
    r = http_request(gw_standin.addr, "GET", "/containers/standin-big/json", [("X-Big", "b" * 15000)])
    assert r.status == 200, r
    assert dict(r.json()["headers"])["X-Big"] == "b" * 15000


def test_valid_framing_controls(gw_standin, standin):
    """Optional whitespace around Content-Length and a mixed-case chunked
    coding are valid HTTP and must be forwarded intact."""
    with gw_standin.connect() as c:
        c.send(b"PUT /containers/standin-ows/archive?path=/tmp HTTP/1.1\r\nHost: localhost\r\nContent-Length: \t5 \r\n\r\nhello")
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_len"] == 5
        c.send(b"PUT /containers/standin-mixed/archive?path=/tmp HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: Chunked\r\n\r\n"
               b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_len"] == 5


def test_hostile_request_after_valid_one_on_same_connection(gw_standin, standin):
    raw = build_request("GET", "/_ping?first=1") + _post(
        b"Content-Length: 48\r\nTransfer-Encoding: chunked\r\n",
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n")
    with gw_standin.connect() as c:
        c.send(raw)
        r1 = c.read_response()
        assert (r1.status, r1.body) == (200, b"OK")
        r2 = c.read_response()
        assert r2.status == 400, r2
        assert r2.json()["message"]
        assert c.wait_closed(5)
    assert [q.target for q in standin.requests()] == ["/_ping?first=1"]
    assert b"smuggled" not in standin.all_bytes()
    assert b"Transfer-Encoding" not in standin.all_bytes()


BAD_CHUNKS = {
    # name: (body bytes after a valid head, bytes the upstream must never see)
    "bad-chunk-size": (b"zz\r\nhello\r\n0\r\n\r\n", b"zz"),
    "chunk-size-overflow": (b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", b"ffffffffffffffffff"),
    "missing-crlf-after-data": (b"5\r\nhelloQZ0\r\n\r\n", b"QZ"),
    "negative-chunk-size": (b"-5\r\nhello\r\n0\r\n\r\n", b"-5"),
}


CHUNKED_TARGETS = {
    # a streamed upload (the head may be forwarded before the body) and a
    # request whose body the gateway inspects before forwarding
    "archive": b"PUT /containers/standin-sink/archive?path=/tmp",
    "create": b"POST /containers/create",
}


@pytest.mark.parametrize("target", sorted(CHUNKED_TARGETS))
@pytest.mark.parametrize("case", sorted(BAD_CHUNKS))
def test_bad_chunked_body(gw_standin, standin, case, target):
    body, poison = BAD_CHUNKS[case]
    head = CHUNKED_TARGETS[target] + (b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-tar\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n")
    with gw_standin.connect(timeout=10) as c:
        c.send_quiet(head + body)
        # the client gets an error response or a closed connection, never a success
        try:
            r = c.read_response(timeout=10)
        except ConnectionClosed:
            r = None
        except TimeoutError:
            pytest.fail("neither a response nor a close within 10s")
        if r is not None:
            assert r.status >= 400, r
        assert c.wait_closed(5), "connection left open after a bad chunked body"
    assert poison not in standin.all_bytes(), standin.all_bytes()
    for q in standin.requests():
        assert not q.body_complete, "the upstream received a complete request: %r" % q.describe()

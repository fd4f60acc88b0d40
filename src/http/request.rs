//! Request heads from clients: strict parsing and the head we send upstream.
//!
//! `parse_request_head` is a pure function over the bytes received so far.
//! It accepts only requests that every HTTP/1.1 implementation reads the same
//! way (RFC 9112), so that what we check is exactly what dockerd executes.

use crate::http::{
    connection_tokens, end_to_end, eq_ignore_case, header_slots, parse_content_length, scan_head,
    write_headers, HeadError, Headers, MAX_HEADERS,
};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_headers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    None,
    Length(u64),
    Chunked,
}

/// Protocols a client may switch to through the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// Docker's hijack for attach and exec start.
    Tcp,
    /// BuildKit `/session` and `/grpc`.
    H2c,
    /// `containers/{id}/attach/ws`.
    WebSocket,
}

impl Upgrade {
    pub fn token(self) -> &'static str {
        match self {
            Upgrade::Tcp => "tcp",
            Upgrade::H2c => "h2c",
            Upgrade::WebSocket => "websocket",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Bytes of the head, including the empty line.
    pub head_len: usize,
    pub body: RequestBody,
    pub keep_alive: bool,
    pub upgrade: Option<Upgrade>,
    /// End-to-end headers, in order, as received.
    pub headers: Headers,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| eq_ignore_case(n, name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The head as dockerd gets it: hop-by-hop headers replaced by our own.
    /// The hop to dockerd stays open whatever the client's hop does: a
    /// client that closes after its reply leaves that connection to the
    /// next request, as nginx's and HAProxy's upstream keep-alive do.
    pub fn encode_upstream(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(if self.minor_version == 0 {
            b" HTTP/1.0\r\n"
        } else {
            b" HTTP/1.1\r\n"
        });
        write_headers(&mut out, &self.headers);
        if let Some(upgrade) = self.upgrade {
            out.extend_from_slice(b"Connection: Upgrade\r\nUpgrade: ");
            out.extend_from_slice(upgrade.token().as_bytes());
            out.extend_from_slice(b"\r\n");
        } else if self.minor_version == 0 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Headers whose meaning a `Connection` header must never be allowed to
/// strip on the way, because that would change how dockerd frames or routes
/// the request.
const PROTECTED: [&str; 4] = ["host", "content-length", "transfer-encoding", "authorization"];

/// `Ok(None)` means the head is not complete yet and may still fit.
pub fn parse_request_head(buf: &[u8], limits: &Limits) -> Result<Option<RequestHead>, HeadError> {
    match scan_head(buf, 0, limits.max_head_bytes)? {
        Some(head_len) => parse_scanned_request(&buf[..head_len], limits).map(Some),
        None => Ok(None),
    }
}

/// Parses a whole head that `scan_head` found and passed: `raw` ends with
/// its empty line.
pub fn parse_scanned_request(raw: &[u8], limits: &Limits) -> Result<RequestHead, HeadError> {
    let head_len = raw.len();
    let mut slots = header_slots();
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(raw, &mut slots[..limits.max_headers.min(MAX_HEADERS)]) {
        Ok(httparse::Status::Complete(n)) if n == head_len => {}
        Ok(_) => return Err(HeadError::Bad("malformed request head")),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(HeadError::Bad("unsupported HTTP version")),
        Err(httparse::Error::Token) => return Err(HeadError::Bad("invalid method")),
        Err(httparse::Error::HeaderName) => return Err(HeadError::Bad("invalid header name")),
        Err(httparse::Error::HeaderValue) => return Err(HeadError::Bad("invalid header value")),
        Err(_) => return Err(HeadError::Bad("malformed request line")),
    }
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("");
    let minor_version = req.version.unwrap_or(1);

    match method {
        "CONNECT" => return Err(HeadError::Bad("CONNECT is not supported")),
        "TRACE" => return Err(HeadError::Bad("TRACE is not supported")),
        _ => {}
    }
    if !target.starts_with('/') {
        return Err(HeadError::Bad("request target must be an absolute path"));
    }
    if target.contains('#') {
        return Err(HeadError::Bad("request target must not contain a fragment"));
    }

    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding_seen = false;
    let mut close_token = false;
    let mut keep_alive_token = false;
    let mut wants_upgrade = false;
    let mut nominated: Vec<String> = Vec::new();
    let mut upgrade_value: Option<&[u8]> = None;

    for h in req.headers.iter() {
        let name = h.name;
        let value = h.value;
        if eq_ignore_case(name, "host") {
            hosts += 1;
        } else if eq_ignore_case(name, "content-length") {
            if content_length.is_some() {
                return Err(HeadError::Bad("repeated Content-Length"));
            }
            content_length =
                Some(parse_content_length(value).ok_or(HeadError::Bad("invalid Content-Length"))?);
        } else if eq_ignore_case(name, "transfer-encoding") {
            if transfer_encoding_seen {
                return Err(HeadError::Bad("repeated Transfer-Encoding"));
            }
            transfer_encoding_seen = true;
            // Trailing whitespace is legal but a known smuggling lever
            // (`chunked\t`): accept the one exact spelling only.
            if !eq_ignore_case_bytes(value, b"chunked") || !ends_line(raw, value) {
                return Err(HeadError::Bad("unsupported Transfer-Encoding"));
            }
            chunked = true;
        } else if eq_ignore_case(name, "connection") {
            for token in connection_tokens(value) {
                match token.as_str() {
                    "close" => close_token = true,
                    "keep-alive" => keep_alive_token = true,
                    "upgrade" => wants_upgrade = true,
                    other => {
                        if PROTECTED.contains(&other) {
                            return Err(HeadError::Bad("Connection names a protected header"));
                        }
                        nominated.push(token);
                    }
                }
            }
        } else if eq_ignore_case(name, "upgrade") {
            upgrade_value = Some(value);
        } else if eq_ignore_case(name, "expect") && !eq_ignore_case_bytes(value, b"100-continue") {
            return Err(HeadError::Expectation);
        }
    }

    if minor_version == 1 && hosts != 1 {
        return Err(HeadError::Bad(if hosts == 0 {
            "missing Host header"
        } else {
            "repeated Host header"
        }));
    }
    if hosts > 1 {
        return Err(HeadError::Bad("repeated Host header"));
    }
    if chunked && content_length.is_some() {
        return Err(HeadError::Bad(
            "both Content-Length and Transfer-Encoding are present",
        ));
    }
    if chunked && minor_version == 0 {
        return Err(HeadError::Bad("Transfer-Encoding is not allowed in HTTP/1.0"));
    }

    let upgrade = if wants_upgrade {
        upgrade_value.and_then(parse_upgrade)
    } else {
        None
    };
    let body = if chunked {
        RequestBody::Chunked
    } else {
        match content_length {
            Some(0) | None => RequestBody::None,
            Some(n) => RequestBody::Length(n),
        }
    };

    let headers = end_to_end(req.headers, &nominated);

    Ok(RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        minor_version,
        head_len,
        body,
        keep_alive: !close_token && (minor_version == 1 || keep_alive_token) && upgrade.is_none(),
        upgrade,
        headers,
    })
}

/// Whether `value` (a slice of `raw`) is followed directly by CRLF.
fn ends_line(raw: &[u8], value: &[u8]) -> bool {
    let end = (value.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize) + value.len();
    raw.get(end..).is_some_and(|rest| rest.starts_with(b"\r\n"))
}

fn eq_ignore_case_bytes(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The first protocol named in `Upgrade`, if it is one we pass on.
fn parse_upgrade(value: &[u8]) -> Option<Upgrade> {
    let first = value.split(|&b| b == b',').next()?;
    let name = first.split(|&b| b == b'/').next()?.trim_ascii();
    if name.eq_ignore_ascii_case(b"tcp") {
        Some(Upgrade::Tcp)
    } else if name.eq_ignore_ascii_case(b"h2c") {
        Some(Upgrade::H2c)
    } else if name.eq_ignore_ascii_case(b"websocket") {
        Some(Upgrade::WebSocket)
    } else {
        None
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head_bytes: 16 * 1024,
        max_headers: 100,
    };

    fn parse(raw: &[u8]) -> Result<Option<RequestHead>, HeadError> {
        parse_request_head(raw, &LIMITS)
    }

    /// A whole, valid head: for the tests of whatever decides on one.
    pub fn head(raw: &str) -> RequestHead {
        parse(raw.as_bytes()).unwrap().unwrap()
    }

    fn bad(raw: &[u8]) -> HeadError {
        match parse(raw) {
            Err(e) => e,
            Ok(r) => panic!("accepted {:?}: {r:?}", String::from_utf8_lossy(raw)),
        }
    }

    #[test]
    fn docker_cli_request() {
        let raw = b"GET /v1.47/containers/json?all=1 HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\n\r\nGET /next";
        let r = parse(raw).unwrap().unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path(), "/v1.47/containers/json");
        assert_eq!(r.head_len, raw.len() - 9);
        assert_eq!(r.body, RequestBody::None);
        assert!(r.keep_alive);
        assert_eq!(r.header("user-agent"), Some(&b"Docker-Client/28.2.2 (linux)"[..]));
    }

    #[test]
    fn incomplete_head_waits() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse(b""), Ok(None));
    }

    #[test]
    fn body_framing() {
        let r = parse(b"POST /build HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.body, RequestBody::Chunked);
        let r = parse(b"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0042\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.body, RequestBody::Length(42));
    }

    #[test]
    fn hop_by_hop_headers_are_replaced() {
        let r = parse(b"POST /exec/1/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, X-Secret\r\nUpgrade: tcp\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nContent-Length: 2\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.upgrade, Some(Upgrade::Tcp));
        let up = String::from_utf8(r.encode_upstream()).unwrap();
        assert_eq!(
            up,
            "POST /exec/1/start HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        );
    }

    #[test]
    fn upgrade_needs_connection_token_and_known_protocol() {
        let r = parse(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.upgrade, None);
        let r = parse(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.upgrade, None);
        let r = parse(b"GET /containers/a/attach/ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.upgrade, Some(Upgrade::WebSocket));
    }

    #[test]
    fn http10_closes_unless_keep_alive_but_the_hop_to_dockerd_stays_open() {
        let r = parse(b"GET /_ping HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!r.keep_alive);
        assert_eq!(
            r.encode_upstream(),
            b"GET /_ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        );
        let r = parse(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.keep_alive);
        assert_eq!(r.encode_upstream(), b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n");
    }

    #[test]
    fn rejects_smuggling_and_ambiguity() {
        use HeadError::*;
        let cases: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked \r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n continued\r\n\r\n",
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n",
            b"GET http://x/_ping HTTP/1.1\r\nHost: x\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\n\r\n",
            b"GET /#frag HTTP/1.1\r\nHost: x\r\n\r\n",
        ];
        for raw in cases {
            assert!(matches!(bad(raw), Bad(_)), "{:?}", String::from_utf8_lossy(raw));
        }
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n"),
            Expectation
        );
    }

    #[test]
    fn limits() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..100 {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(bad(&raw), HeadError::TooManyHeaders);
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        raw.resize(LIMITS.max_head_bytes, b'a');
        assert_eq!(bad(&raw), HeadError::TooLarge);
    }
}

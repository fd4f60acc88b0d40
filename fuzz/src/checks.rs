//! Properties of dockermand's parsers, checked on arbitrary input.
//!
//! One public function per fuzz target, taking the raw fuzz input. Each
//! returns `Err(description)` when a property fails; a panic inside the code
//! under test propagates. The fuzz targets turn an `Err` into a crash, and
//! `tests/fuzz_regressions.rs` (which includes this file by `#[path]`) runs
//! every committed input through the same function.
//!
//! Where it can, a check compares the parser with a small reference model
//! written here independently (line splitting instead of a state machine),
//! so a property is more than "does not panic".

#![allow(dead_code)]

use dockermand::config::{self, Command, Config, ListenAddr};
use dockermand::http::chunked::{ChunkError, ChunkedTracker, MAX_LINE, MAX_TRAILERS};
use dockermand::http::request::{parse_request_head, Limits, RequestBody, RequestHead, Upgrade};
use dockermand::http::response::{parse_response_head, ResponseBody, ResponseHead};
use dockermand::http::{scan_head, HeadError};

pub type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// The limits dockermand runs with by default.
pub const DEFAULT_LIMITS: Limits = Limits {
    max_head_bytes: 16 * 1024,
    max_headers: 100,
};

/// The smallest limits its configuration allows.
pub const SMALL_LIMITS: Limits = Limits {
    max_head_bytes: 1024,
    max_headers: 8,
};

fn show(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(300) {
        s.extend(std::ascii::escape_default(b).map(char::from));
    }
    if bytes.len() > 300 {
        s.push_str("...");
    }
    s
}

// ---------------------------------------------------------------------------
// A reference reading of a head, independent of httparse.

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// The line-ending rules every accepted head must follow, checked by
/// splitting into CRLF-terminated lines rather than scanning bytes.
fn clean_head(head: &[u8]) -> Check {
    ensure!(
        head.ends_with(b"\r\n\r\n"),
        "head does not end with an empty line"
    );
    ensure!(!head.contains(&0), "head contains NUL");
    // Without the empty line, every line ends in CRLF.
    let mut rest = &head[..head.len() - 2];
    let mut i = 0;
    while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
        let Some(line) = rest[..lf].strip_suffix(b"\r") else {
            return Err(format!("bare LF in line {i}"));
        };
        ensure!(!line.contains(&b'\r'), "bare CR in line {i}");
        ensure!(!line.is_empty(), "empty line {i} inside the head");
        ensure!(
            !matches!(line[0], b' ' | b'\t'),
            "line {i} starts with whitespace (obs-fold)"
        );
        rest = &rest[lf + 1..];
        i += 1;
    }
    ensure!(rest.is_empty(), "unterminated line {i}");
    Ok(())
}

/// Lines of a clean head, without the empty line.
fn head_lines(head: &[u8]) -> Vec<&[u8]> {
    let body = &head[..head.len() - 4];
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

/// `name: value` with the optional whitespace around the value removed.
fn split_field(line: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| format!("header line without colon: {}", show(line)))?;
    let name = &line[..colon];
    let mut value = &line[colon + 1..];
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    Ok((name, value))
}

fn is_field_value(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Tokens of every `Connection` field, lower-cased.
fn connection_tokens(fields: &[(&[u8], &[u8])]) -> Vec<String> {
    let mut tokens = Vec::new();
    for (name, value) in fields {
        if lower(name) == "connection" {
            for t in value.split(|&b| b == b',') {
                let t = lower(t.trim_ascii());
                if !t.is_empty() {
                    tokens.push(t);
                }
            }
        }
    }
    tokens
}

/// The fields a hop must pass on: hop-by-hop ones and those `Connection`
/// names removed, order kept.
///
/// `close`, `keep-alive` and `upgrade` are read as options, not as names of
/// fields to drop (RFC 9110 §7.6.1 would drop a field named `close` too; the
/// gateway forwards it, which is harmless).
fn end_to_end(fields: &[(&[u8], &[u8])]) -> Vec<(String, Vec<u8>)> {
    let mut tokens = connection_tokens(fields);
    tokens.retain(|t| !matches!(t.as_str(), "close" | "keep-alive" | "upgrade"));
    fields
        .iter()
        .filter(|(name, _)| {
            let n = lower(name);
            !HOP_BY_HOP.contains(&n.as_str()) && !tokens.contains(&n)
        })
        .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
        .collect()
}

fn values<'a>(fields: &[(&'a [u8], &'a [u8])], name: &str) -> Vec<&'a [u8]> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| *v)
        .collect()
}

fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Position just past the first empty line, if any.
fn first_head_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len().saturating_sub(3))
        .find(|&i| &buf[i..i + 4] == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// A cheap deterministic spread of positions, taken from the input itself.
fn some_positions(buf: &[u8], below: usize) -> Vec<usize> {
    if below == 0 {
        return Vec::new();
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in buf.iter().take(64) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let mut out = vec![below - 1, below / 2, (h % below as u64) as usize];
    if below > 2 {
        out.push(1);
    }
    out.sort_unstable();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------
// request_head

/// What the reference reading expects of an accepted request head.
fn request_model(raw: &[u8], h: &RequestHead) -> Check {
    let lines = head_lines(raw);
    let request_line = format!("{} {} HTTP/1.{}", h.method, h.target, h.minor_version);
    ensure!(
        lines[0] == request_line.as_bytes(),
        "request line {} read as {request_line:?}",
        show(lines[0])
    );
    ensure!(h.minor_version <= 1, "HTTP/1.{} accepted", h.minor_version);
    ensure!(
        is_token(h.method.as_bytes()),
        "method {:?} is not a token",
        h.method
    );
    ensure!(
        h.method != "CONNECT" && h.method != "TRACE",
        "{} accepted",
        h.method
    );
    ensure!(
        h.target.starts_with('/'),
        "target {:?} is not origin-form",
        h.target
    );
    ensure!(
        h.target.bytes().all(|b| b > b' ' && b != 0x7f),
        "target {:?} has whitespace or a control byte",
        h.target
    );
    ensure!(!h.target.contains('#'), "target {:?} has a fragment", h.target);

    let mut fields = Vec::new();
    for line in &lines[1..] {
        let (name, value) = split_field(line)?;
        ensure!(is_token(name), "field name {} is not a token", show(name));
        ensure!(
            is_field_value(value),
            "field value {} has control bytes",
            show(value)
        );
        fields.push((name, value));
    }

    let hosts = values(&fields, "host").len();
    ensure!(hosts <= 1, "{hosts} Host fields accepted");
    ensure!(
        h.minor_version == 0 || hosts == 1,
        "HTTP/1.1 without Host accepted"
    );
    let cl = values(&fields, "content-length");
    let te = values(&fields, "transfer-encoding");
    ensure!(cl.len() <= 1, "{} Content-Length fields accepted", cl.len());
    ensure!(te.len() <= 1, "{} Transfer-Encoding fields accepted", te.len());
    ensure!(
        cl.is_empty() || te.is_empty(),
        "Content-Length and Transfer-Encoding both accepted"
    );
    let expected_body = if let Some(te) = te.first() {
        ensure!(
            te.eq_ignore_ascii_case(b"chunked"),
            "Transfer-Encoding {} accepted",
            show(te)
        );
        ensure!(h.minor_version == 1, "Transfer-Encoding accepted in HTTP/1.0");
        // One spelling only: no whitespace after `chunked` (`chunked\t`).
        let spelled = lines[1..].iter().any(|l| {
            l.len() >= 18
                && l[..18].eq_ignore_ascii_case(b"transfer-encoding:")
                && l.len() >= 7
                && l[l.len() - 7..].eq_ignore_ascii_case(b"chunked")
        });
        ensure!(spelled, "Transfer-Encoding with trailing whitespace accepted");
        RequestBody::Chunked
    } else if let Some(cl) = cl.first() {
        match digits(cl) {
            Some(0) => RequestBody::None,
            Some(n) => RequestBody::Length(n),
            None => return Err(format!("Content-Length {} accepted", show(cl))),
        }
    } else {
        RequestBody::None
    };
    ensure!(
        h.body == expected_body,
        "body {:?}, expected {expected_body:?}",
        h.body
    );
    for e in values(&fields, "expect") {
        ensure!(
            e.eq_ignore_ascii_case(b"100-continue"),
            "Expect {} accepted",
            show(e)
        );
    }

    let tokens = connection_tokens(&fields);
    for protected in ["host", "content-length", "transfer-encoding", "authorization"] {
        ensure!(
            !tokens.iter().any(|t| t == protected),
            "Connection may strip {protected}"
        );
    }
    let wants_upgrade = tokens.iter().any(|t| t == "upgrade");
    let expected_upgrade = match values(&fields, "upgrade").last() {
        Some(v) if wants_upgrade => {
            let first = v.split(|&b| b == b',').next().unwrap_or(b"");
            let proto = lower(first.split(|&b| b == b'/').next().unwrap_or(b"").trim_ascii());
            match proto.as_str() {
                "tcp" => Some(Upgrade::Tcp),
                "h2c" => Some(Upgrade::H2c),
                "websocket" => Some(Upgrade::WebSocket),
                _ => None,
            }
        }
        _ => None,
    };
    ensure!(
        h.upgrade == expected_upgrade,
        "upgrade {:?}, expected {expected_upgrade:?}",
        h.upgrade
    );
    let expected_keep_alive = !tokens.iter().any(|t| t == "close")
        && (h.minor_version == 1 || tokens.iter().any(|t| t == "keep-alive"))
        && expected_upgrade.is_none();
    ensure!(
        h.keep_alive == expected_keep_alive,
        "keep_alive {}, expected {expected_keep_alive}",
        h.keep_alive
    );
    let expected_headers = end_to_end(&fields);
    ensure!(
        h.headers == expected_headers,
        "end-to-end headers {:?}, expected {expected_headers:?}",
        h.headers
    );
    Ok(())
}

/// The head sent upstream reads back as the same request, and encoding is
/// stable.
fn request_roundtrip(h: &RequestHead) -> Check {
    let up = h.encode_upstream();
    clean_head(&up).map_err(|e| format!("upstream head: {e}: {}", show(&up)))?;
    let limits = Limits {
        max_head_bytes: up.len() + 1,
        max_headers: h.headers.len() + 2,
    };
    let again = match parse_request_head(&up, &limits) {
        Ok(Some(again)) => again,
        other => return Err(format!("upstream head {} parsed as {other:?}", show(&up))),
    };
    ensure!(again.head_len == up.len(), "upstream head_len {}", again.head_len);
    ensure!(
        again.method == h.method && again.target == h.target,
        "upstream request line changed: {} {}",
        again.method,
        again.target
    );
    ensure!(again.minor_version == h.minor_version, "upstream version changed");
    ensure!(
        again.headers == h.headers,
        "upstream headers changed: {:?}",
        again.headers
    );
    ensure!(
        again.body == h.body,
        "upstream body framing changed: {:?}",
        again.body
    );
    ensure!(
        again.upgrade == h.upgrade,
        "upstream upgrade changed: {:?}",
        again.upgrade
    );
    // The hop to dockerd stays open unless the connection is switching.
    ensure!(
        again.keep_alive == h.upgrade.is_none(),
        "upstream keep-alive {} for upgrade {:?}",
        again.keep_alive,
        h.upgrade
    );
    ensure!(again.encode_upstream() == up, "encode_upstream is not stable");
    Ok(())
}

fn check_request_with(buf: &[u8], limits: &Limits) -> Result<Option<RequestHead>, String> {
    // The connection scans a head as it arrives, each time only past what
    // it looked at before: that must find what one scan of it all finds.
    let once = scan_head(buf, 0, limits.max_head_bytes);
    for k in some_positions(buf, buf.len()) {
        if scan_head(&buf[..k], 0, limits.max_head_bytes) == Ok(None) {
            let resumed = scan_head(buf, k, limits.max_head_bytes);
            ensure!(
                resumed == once,
                "scan resumed at {k}: {resumed:?}, in one: {once:?}"
            );
        }
    }
    let result = parse_request_head(buf, limits);
    match &result {
        Ok(Some(h)) => {
            ensure!(h.head_len <= buf.len(), "head_len {} > {}", h.head_len, buf.len());
            ensure!(h.head_len <= limits.max_head_bytes, "head_len over the limit");
            ensure!(
                first_head_end(buf) == Some(h.head_len),
                "head_len {} is not the first empty line",
                h.head_len
            );
            let raw = &buf[..h.head_len];
            clean_head(raw)?;
            ensure!(
                head_lines(raw).len() - 1 <= limits.max_headers,
                "more than max_headers accepted"
            );
            request_model(raw, h)?;
            request_roundtrip(h)?;
            // The bytes after the head do not matter ...
            let alone = parse_request_head(raw, limits);
            ensure!(alone == result, "head alone parsed as {alone:?}");
            // ... and a head still arriving is only ever incomplete.
            for k in some_positions(buf, h.head_len) {
                let part = parse_request_head(&buf[..k], limits);
                ensure!(part == Ok(None), "prefix of {k} bytes parsed as {part:?}");
            }
        }
        Ok(None) => {
            ensure!(
                first_head_end(&buf[..buf.len().min(limits.max_head_bytes)]).is_none(),
                "complete head reported incomplete"
            );
            ensure!(
                buf.len() < limits.max_head_bytes,
                "over-long head reported incomplete"
            );
        }
        Err(_) => {}
    }
    Ok(result.ok().flatten())
}

/// Fuzz target `request_head`: the raw bytes a client sent.
pub fn request_head(buf: &[u8]) -> Check {
    check_request_with(buf, &DEFAULT_LIMITS)?;
    let small = check_request_with(buf, &SMALL_LIMITS)?;
    // Smaller limits only ever turn a result into a limit error.
    let default = parse_request_head(buf, &DEFAULT_LIMITS);
    let tight = parse_request_head(buf, &SMALL_LIMITS);
    if small.is_some() {
        ensure!(
            tight == default,
            "small limits accept what default limits read as {default:?}"
        );
    }
    match (&default, &tight) {
        (Err(_), Ok(_)) => {
            return Err(format!(
                "small limits accept a head default limits reject ({default:?})"
            ))
        }
        (_, Err(e @ (HeadError::Bad(_) | HeadError::Expectation))) => {
            ensure!(default == Err(*e), "small limits: {e:?}, default: {default:?}")
        }
        _ => {}
    }
    if let (Ok(Some(h)), Err(e)) = (&default, &tight) {
        let lines = head_lines(&buf[..h.head_len]).len() - 1;
        ensure!(
            h.head_len > SMALL_LIMITS.max_head_bytes || lines > SMALL_LIMITS.max_headers,
            "small limits reject ({e:?}) a head within them"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// response_head

fn response_model(raw: &[u8], r: &ResponseHead, was_head: bool) -> Check {
    let lines = head_lines(raw);
    let status_line = lines[0];
    ensure!(
        status_line.len() >= 12 && status_line.starts_with(b"HTTP/1.") && status_line[8] == b' ',
        "status line {}",
        show(status_line)
    );
    let minor = status_line[7];
    ensure!(
        minor == b'0' || minor == b'1',
        "HTTP/1.{} accepted",
        minor as char
    );
    let code = &status_line[9..12];
    ensure!(
        code.iter().all(u8::is_ascii_digit) && code == r.status.to_string().as_bytes(),
        "status {} read as {}",
        show(code),
        r.status
    );
    ensure!((100..=599).contains(&r.status), "status {} accepted", r.status);
    let reason = match &status_line[12..] {
        [] => &b""[..],
        [b' ', rest @ ..] => rest,
        other => return Err(format!("status code runs into {}", show(other))),
    };
    // httparse hands out a reason with obs-text (bytes >= 0x80) as "".
    if reason.is_ascii() || !r.reason.is_empty() {
        ensure!(
            r.reason.as_bytes() == reason,
            "reason {:?}, expected {}",
            r.reason,
            show(reason)
        );
    }

    let mut fields = Vec::new();
    for line in &lines[1..] {
        let (name, value) = split_field(line)?;
        ensure!(is_token(name), "field name {} is not a token", show(name));
        ensure!(
            is_field_value(value),
            "field value {} has control bytes",
            show(value)
        );
        fields.push((name, value));
    }
    let cl = values(&fields, "content-length");
    let te = values(&fields, "transfer-encoding");
    ensure!(te.len() <= 1, "{} Transfer-Encoding fields accepted", te.len());
    ensure!(
        cl.is_empty() || te.is_empty(),
        "Content-Length and Transfer-Encoding both accepted"
    );
    let mut length = None;
    for v in &cl {
        let n = digits(v).ok_or_else(|| format!("Content-Length {} accepted", show(v)))?;
        ensure!(
            length.is_none_or(|l| l == n),
            "conflicting Content-Length accepted"
        );
        length = Some(n);
    }
    if let Some(te) = te.first() {
        ensure!(
            te.eq_ignore_ascii_case(b"chunked"),
            "Transfer-Encoding {} accepted",
            show(te)
        );
    }
    let expected_body = if was_head || (100..200).contains(&r.status) || r.status == 204 || r.status == 304 {
        ResponseBody::None
    } else if !te.is_empty() {
        ResponseBody::Chunked
    } else {
        match length {
            Some(0) => ResponseBody::None,
            Some(n) => ResponseBody::Length(n),
            None => ResponseBody::UntilClose,
        }
    };
    ensure!(
        r.body == expected_body,
        "body {:?}, expected {expected_body:?}",
        r.body
    );
    if r.body == ResponseBody::UntilClose {
        ensure!(!r.keep_alive, "keep-alive with a body that ends at close");
    }
    let expected_upgrade = match values(&fields, "upgrade").last() {
        Some(v) if r.status == 101 => Some(v.to_vec()),
        _ => None,
    };
    ensure!(
        r.upgrade.map(<[u8]>::to_vec) == expected_upgrade,
        "upgrade {:?}",
        r.upgrade
    );
    let expected_headers = end_to_end(&fields);
    let headers: Vec<(String, Vec<u8>)> = r
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect();
    ensure!(
        headers == expected_headers,
        "end-to-end headers {:?}, expected {expected_headers:?}",
        r.headers
    );
    Ok(())
}

/// CORS lines the gateway may add to a reply.
const EXTRA: &str = "Access-Control-Allow-Origin: http://router.lan\r\nVary: Origin\r\n";

fn response_roundtrip(r: &ResponseHead, was_head: bool) -> Check {
    for (close, extra) in [(false, ""), (true, ""), (false, EXTRA)] {
        let out = r.encode_for_client(close, extra);
        clean_head(&out).map_err(|e| format!("client head: {e}: {}", show(&out)))?;
        let again = match parse_response_head(&out, out.len() + 1, r.headers.len() + 4, was_head) {
            Ok(Some(again)) => again,
            other => return Err(format!("client head {} parsed as {other:?}", show(&out))),
        };
        let mut headers = r.headers.clone();
        if !extra.is_empty() {
            headers.push(("Access-Control-Allow-Origin", b"http://router.lan"));
            headers.push(("Vary", b"Origin"));
        }
        ensure!(again.head_len == out.len(), "client head_len {}", again.head_len);
        ensure!(again.status == r.status, "client status {}", again.status);
        ensure!(again.reason == r.reason, "client reason {:?}", again.reason);
        ensure!(
            again.headers == headers,
            "client headers changed: {:?}",
            again.headers
        );
        ensure!(
            again.body == r.body,
            "client body framing changed: {:?}",
            again.body
        );
        ensure!(
            again.upgrade == r.upgrade,
            "client upgrade changed: {:?}",
            again.upgrade
        );
        if close && !r.is_interim() && r.upgrade.is_none() {
            ensure!(!again.keep_alive, "client not told the connection closes");
        }
        if !close {
            ensure!(
                again.keep_alive == (r.body != ResponseBody::UntilClose),
                "client keep-alive {} for body {:?}",
                again.keep_alive,
                r.body
            );
        }
        if extra.is_empty() {
            ensure!(
                again.encode_for_client(close, "") == out,
                "encode_for_client is not stable"
            );
        }
    }
    Ok(())
}

fn check_response_with(buf: &[u8], was_head: bool) -> Check {
    let (max, max_headers) = (DEFAULT_LIMITS.max_head_bytes, DEFAULT_LIMITS.max_headers);
    let result = parse_response_head(buf, max, max_headers, was_head);
    match &result {
        Ok(Some(r)) => {
            ensure!(r.head_len <= buf.len(), "head_len {} > {}", r.head_len, buf.len());
            ensure!(
                first_head_end(buf) == Some(r.head_len),
                "head_len {} is not the first empty line",
                r.head_len
            );
            let raw = &buf[..r.head_len];
            clean_head(raw)?;
            response_model(raw, r, was_head)?;
            response_roundtrip(r, was_head)?;
            let alone = parse_response_head(raw, max, max_headers, was_head);
            ensure!(alone == result, "head alone parsed as {alone:?}");
            for k in some_positions(buf, r.head_len) {
                let part = parse_response_head(&buf[..k], max, max_headers, was_head);
                ensure!(part == Ok(None), "prefix of {k} bytes parsed as {part:?}");
            }
        }
        Ok(None) => ensure!(
            first_head_end(&buf[..buf.len().min(max)]).is_none() && buf.len() < max,
            "complete head reported incomplete"
        ),
        Err(_) => {}
    }
    Ok(())
}

/// Fuzz target `response_head`: the raw bytes dockerd sent, read both as the
/// reply to a HEAD request and to any other.
pub fn response_head(buf: &[u8]) -> Check {
    check_response_with(buf, false)?;
    check_response_with(buf, true)?;
    // The request method only changes whether a body follows.
    let a = parse_response_head(buf, 16384, 100, false);
    let b = parse_response_head(buf, 16384, 100, true);
    match (a, b) {
        (Ok(Some(a)), Ok(Some(b))) => ensure!(
            a.status == b.status && a.headers == b.headers && a.upgrade == b.upgrade,
            "HEAD changes more than the body"
        ),
        (a, b) => ensure!(
            a.is_ok() == b.is_ok() && a.map(|x| x.is_some()).ok() == b.map(|x| x.is_some()).ok(),
            "HEAD changes acceptance"
        ),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// chunked

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The message ends after this many bytes.
    Ends(usize),
    /// Every byte belongs to the message, and it goes on.
    Incomplete,
    Error(ChunkError),
}

/// Reference reading of a chunked body (RFC 9112 §7.1), written as a
/// position-based line parser with the tracker's documented strictness:
/// `1*HEXDIG` sizes under 2^64, extensions of visible ASCII, space and tab,
/// CRLF everywhere, size lines of at most `MAX_LINE` bytes up to and
/// including their CR, trailer fields that do not start with whitespace or a
/// colon, and a trailer section of at most `MAX_TRAILERS` bytes before its
/// final LF.
pub fn reference_chunked(msg: &[u8]) -> Framing {
    use ChunkError::*;
    use Framing::*;
    let n = msg.len();
    let mut p = 0usize;
    loop {
        let line = p;
        let over_line = |q: usize| q - line + 1 > MAX_LINE;
        let mut size: u64 = 0;
        let mut ndigits = 0;
        // chunk-size
        loop {
            if p == n {
                return Incomplete;
            }
            if over_line(p) {
                return Error(LineTooLong);
            }
            let b = msg[p];
            let Some(v) = (b as char).to_digit(16) else {
                break;
            };
            if size > u64::MAX >> 4 {
                return Error(SizeOverflow);
            }
            size = size * 16 + u64::from(v);
            ndigits += 1;
            p += 1;
        }
        if ndigits == 0 {
            return Error(BadSize);
        }
        // [ ; chunk-ext ] CR
        if msg[p] == b';' {
            p += 1;
            loop {
                if p == n {
                    return Incomplete;
                }
                if over_line(p) {
                    return Error(LineTooLong);
                }
                match msg[p] {
                    b'\r' => break,
                    b'\t' | 0x20..=0x7e => p += 1,
                    _ => return Error(BadExtension),
                }
            }
        } else if msg[p] != b'\r' {
            return Error(BadSize);
        }
        // LF
        p += 1;
        if p == n {
            return Incomplete;
        }
        if msg[p] != b'\n' {
            return Error(BadSize);
        }
        p += 1;
        if size == 0 {
            break;
        }
        // chunk-data CRLF
        if ((n - p) as u64) < size {
            return Incomplete;
        }
        p += size as usize;
        for want in [b'\r', b'\n'] {
            if p == n {
                return Incomplete;
            }
            if msg[p] != want {
                return Error(MissingCrlf);
            }
            p += 1;
        }
    }
    // trailer-section CRLF
    let start = p;
    let over = |q: usize| q - start + 1 > MAX_TRAILERS;
    loop {
        if p == n {
            return Incomplete;
        }
        if over(p) {
            return Error(TrailersTooLarge);
        }
        match msg[p] {
            b'\r' => {
                p += 1;
                if p == n {
                    return Incomplete;
                }
                return if msg[p] == b'\n' {
                    Ends(p + 1)
                } else {
                    Error(BadTrailer)
                };
            }
            b' ' | b'\t' | b'\n' | b':' => return Error(BadTrailer),
            _ => p += 1,
        }
        loop {
            if p == n {
                return Incomplete;
            }
            if over(p) {
                return Error(TrailersTooLarge);
            }
            match msg[p] {
                b'\r' => break,
                b'\n' | 0 => return Error(BadTrailer),
                _ => p += 1,
            }
        }
        p += 1;
        if p == n {
            return Incomplete;
        }
        if over(p) {
            return Error(TrailersTooLarge);
        }
        if msg[p] != b'\n' {
            return Error(BadTrailer);
        }
        p += 1;
    }
}

/// How a chunked fuzz input says to feed the tracker: the first byte holds
/// the number of piece lengths that follow (low 3 bits) and whether chunk
/// data is skipped blindly (bit 3), then one byte per piece length, then the
/// message; the last piece is the rest. Hand-written seeds can use printable
/// control bytes: `0` (0x30) is "one piece, no skipping", `8` (0x38) is
/// "one piece, skip data".
pub struct ChunkedInput<'a> {
    pub pieces: Vec<usize>,
    pub skip: bool,
    pub message: &'a [u8],
}

impl<'a> ChunkedInput<'a> {
    pub fn decode(data: &'a [u8]) -> ChunkedInput<'a> {
        let Some((&ctl, rest)) = data.split_first() else {
            return ChunkedInput {
                pieces: Vec::new(),
                skip: false,
                message: data,
            };
        };
        let count = usize::from(ctl & 7).min(rest.len());
        ChunkedInput {
            pieces: rest[..count].iter().map(|&b| usize::from(b)).collect(),
            skip: ctl & 8 != 0,
            message: &rest[count..],
        }
    }
}

fn tracker_framing(tracker: &ChunkedTracker, consumed: usize, total: usize) -> Result<Framing, String> {
    if tracker.is_done() {
        Ok(Framing::Ends(consumed))
    } else {
        ensure!(
            consumed == total,
            "stopped at {consumed} of {total} without an end or error"
        );
        Ok(Framing::Incomplete)
    }
}

/// Feeds `msg` in the given pieces (the rest as one more), skipping chunk
/// data blindly between calls if `skip`, as the relay does.
fn feed(msg: &[u8], pieces: &[usize], skip: bool) -> Result<Framing, String> {
    let mut t = ChunkedTracker::new();
    let mut pos = 0;
    let mut bounds: Vec<usize> = Vec::new();
    for &len in pieces {
        let end = (bounds.last().copied().unwrap_or(0) + len).min(msg.len());
        bounds.push(end);
    }
    bounds.push(msg.len());
    for end in bounds {
        while pos < end {
            if t.is_done() {
                ensure!(t.advance(&msg[pos..end]) == Ok(0), "done tracker consumed input");
                return tracker_framing(&t, pos, msg.len());
            }
            let pending = t.pending_data();
            if skip && pending > 0 {
                let k = pending.min((end - pos) as u64);
                t.skip_data(k);
                ensure!(t.pending_data() == pending - k, "skip_data miscounted");
                pos += k as usize;
                continue;
            }
            match t.advance(&msg[pos..end]) {
                Ok(k) => {
                    ensure!(k <= end - pos, "advance consumed {k} of {}", end - pos);
                    pos += k;
                    if pos < end {
                        ensure!(t.is_done(), "advance stopped early without an end");
                    }
                }
                Err(e) => return Ok(Framing::Error(e)),
            }
        }
    }
    if t.is_done() {
        ensure!(t.pending_data() == 0, "done tracker has pending data");
    }
    tracker_framing(&t, pos, msg.len())
}

/// Fuzz target `chunked`: the tracker agrees with the reference reading,
/// whatever the split of its input and whether chunk data is skipped.
pub fn chunked(data: &[u8]) -> Check {
    let input = ChunkedInput::decode(data);
    let msg = input.message;
    let expected = reference_chunked(msg);

    let mut t = ChunkedTracker::new();
    let whole = match t.advance(msg) {
        Ok(k) => tracker_framing(&t, k, msg.len())?,
        Err(e) => Framing::Error(e),
    };
    ensure!(whole == expected, "tracker: {whole:?}, reference: {expected:?}");

    let split = feed(msg, &input.pieces, input.skip)?;
    ensure!(
        split == whole,
        "fed in pieces {:?} (skip {}): {split:?}, at once: {whole:?}",
        input.pieces,
        input.skip
    );
    // The other way of moving data, and one byte at a time for short input.
    let other = feed(msg, &input.pieces, !input.skip)?;
    ensure!(
        other == whole,
        "fed with skip {}: {other:?}, at once: {whole:?}",
        !input.skip
    );
    if msg.len() <= 256 {
        let ones = vec![1; msg.len()];
        let bytewise = feed(msg, &ones, input.skip)?;
        ensure!(
            bytewise == whole,
            "fed byte by byte: {bytewise:?}, at once: {whole:?}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// config

/// `tcp://` addresses that need a name lookup are left alone: a fuzzer must
/// not send DNS queries.
fn resolves_offline(value: &str) -> bool {
    match value.strip_prefix("tcp://") {
        Some(hostport) => hostport
            .trim_end_matches('/')
            .parse::<std::net::SocketAddr>()
            .is_ok(),
        None => true,
    }
}

/// A file name of our own for a config file (tests run in threads).
fn temp_config_path() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("dockermand-fuzz-{}-{n}.json", std::process::id()))
}

fn check_config_ranges(cfg: &Config) -> Check {
    ensure!(
        (1..=65_536).contains(&cfg.max_connections),
        "max_connections {}",
        cfg.max_connections
    );
    ensure!(
        (1024..=1024 * 1024).contains(&cfg.max_head_bytes),
        "max_head_bytes {}",
        cfg.max_head_bytes
    );
    ensure!(
        (8..=1000).contains(&cfg.max_headers),
        "max_headers {}",
        cfg.max_headers
    );
    ensure!(!cfg.header_timeout.is_zero(), "header_timeout 0");
    ensure!(!cfg.idle_timeout.is_zero(), "idle_timeout 0");
    ensure!(cfg.unix_mode <= 0o777, "unix_mode {:o}", cfg.unix_mode);
    ensure!(!cfg.listen.is_empty(), "no listen address");
    // Reachable from the network only with authentication or --insecure.
    if !cfg.insecure && cfg.is_open() {
        for l in &cfg.listen {
            if let ListenAddr::Tcp(a) | ListenAddr::Tls(a) = l {
                ensure!(a.ip().is_loopback(), "listening on {a} without --insecure");
            }
        }
    }
    if cfg.listen.iter().any(ListenAddr::is_tls) {
        ensure!(
            cfg!(feature = "tls") && cfg.tls.cert.is_some() && cfg.tls.key.is_some(),
            "a TLS listener without a certificate and key"
        );
    }
    Ok(())
}

fn model_level(s: &str) -> Option<log::LevelFilter> {
    Some(match s.to_ascii_lowercase().as_str() {
        "error" => log::LevelFilter::Error,
        "warn" | "warning" => log::LevelFilter::Warn,
        "info" => log::LevelFilter::Info,
        "debug" => log::LevelFilter::Debug,
        "trace" => log::LevelFilter::Trace,
        "off" => log::LevelFilter::Off,
        _ => return None,
    })
}

/// Fuzz target `config_file`: any text as the JSON config file. An accepted
/// file is then loaded through `Config::from_args(["--config", FILE])`,
/// which must reject it when one of its plain settings is invalid, and
/// otherwise give a configuration in range that holds the file's values.
pub fn config_file(data: &[u8]) -> Check {
    let text = String::from_utf8_lossy(data);
    let Ok(file) = config::parse_file(&text) else {
        return Ok(());
    };
    if !file.upstream.as_deref().is_none_or(resolves_offline) {
        return Ok(());
    }

    // The plain settings the file gives, by the documented rules; `None`
    // where the file's value is invalid.
    let listen = file.listen.as_ref().map(|list| {
        list.iter()
            .map(|s| ListenAddr::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .ok()
    });
    let upstream = file
        .upstream
        .as_ref()
        .map(|u| dockermand::net::upstream::UpstreamAddr::parse(u).ok());
    let level = file.log_level.as_ref().map(|l| model_level(l));
    let mode = file
        .unix_mode
        .as_ref()
        .map(|m| u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o777));
    let in_range = |v: Option<usize>, lo: usize, hi: usize| v.is_none_or(|v| (lo..=hi).contains(&v));
    let plain_valid = listen
        .as_ref()
        .is_none_or(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
        && upstream.as_ref().is_none_or(Option::is_some)
        && level.is_none_or(|l| l.is_some())
        && mode.is_none_or(|m| m.is_some())
        && in_range(file.max_connections, 1, 65_536)
        && in_range(file.max_head_bytes, 1024, 1024 * 1024)
        && in_range(file.max_headers, 8, 1000)
        && file.header_timeout_secs != Some(0)
        && file.idle_timeout_secs != Some(0);

    let path = temp_config_path();
    std::fs::write(&path, text.as_bytes()).map_err(|e| format!("writing {path:?}: {e}"))?;
    let args = vec!["--config".to_string(), path.to_string_lossy().into_owned()];
    let loaded = Config::from_args(&args);
    let _ = std::fs::remove_file(&path);
    let cfg = match loaded {
        Ok(Command::Run(cfg)) => cfg,
        Ok(_) => return Err("a config file asked for something other than a run".into()),
        Err(_) => return Ok(()),
    };
    ensure!(plain_valid, "invalid file accepted as {cfg:?}");
    check_config_ranges(&cfg)?;
    ensure!(
        cfg.config_file.as_deref() == Some(path.as_path()),
        "config_file {:?}",
        cfg.config_file
    );
    let defaults = Config::default();
    let want_listen = listen.flatten().unwrap_or(defaults.listen);
    ensure!(
        cfg.listen == want_listen,
        "listen {:?}, file {want_listen:?}",
        cfg.listen
    );
    let want_upstream = upstream.flatten().unwrap_or(defaults.upstream);
    ensure!(cfg.upstream == want_upstream, "upstream {:?}", cfg.upstream);
    ensure!(
        cfg.log_level == level.flatten().unwrap_or(defaults.log_level),
        "log_level {:?}",
        cfg.log_level
    );
    ensure!(
        cfg.unix_mode == mode.flatten().unwrap_or(defaults.unix_mode),
        "unix_mode {:o}",
        cfg.unix_mode
    );
    let secs = |v: Option<u64>, d: std::time::Duration| v.map_or(d, std::time::Duration::from_secs);
    ensure!(
        cfg.max_connections == file.max_connections.unwrap_or(defaults.max_connections)
            && cfg.max_head_bytes == file.max_head_bytes.unwrap_or(defaults.max_head_bytes)
            && cfg.max_headers == file.max_headers.unwrap_or(defaults.max_headers)
            && cfg.header_timeout == secs(file.header_timeout_secs, defaults.header_timeout)
            && cfg.idle_timeout == secs(file.idle_timeout_secs, defaults.idle_timeout)
            && cfg.shutdown_grace == secs(file.shutdown_grace_secs, defaults.shutdown_grace),
        "limits differ from the file: {cfg:?}"
    );
    ensure!(
        cfg.splice != file.no_splice.unwrap_or(!defaults.splice),
        "splice {}",
        cfg.splice
    );
    ensure!(
        cfg.insecure == file.insecure.unwrap_or(defaults.insecure),
        "insecure {}",
        cfg.insecure
    );
    Ok(())
}

/// The flag an argument names, as `--name=value` or alone.
fn flag_name(arg: &str) -> &str {
    match arg.split_once('=') {
        Some((name, _)) if name.starts_with("--") => name,
        _ => arg,
    }
}

/// Fuzz target `config_args`: NUL-separated command-line arguments. Inputs
/// naming a config file are skipped (the fuzzer must not read arbitrary
/// files), and so are `tcp://` names that would need a DNS lookup.
pub fn config_args(data: &[u8]) -> Check {
    let text = String::from_utf8_lossy(data);
    let args: Vec<String> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\0').map(str::to_string).collect()
    };
    for a in &args {
        if a.starts_with("--config") {
            return Ok(());
        }
        let value = a.split_once('=').map_or("", |(_, v)| v);
        if !resolves_offline(a) || !resolves_offline(value) {
            return Ok(());
        }
    }
    match Config::from_args(&args) {
        Ok(Command::Run(cfg)) => {
            check_config_ranges(&cfg)?;
            ensure!(cfg.config_file.is_none(), "config file without --config");
            // A switch takes no value: `--insecure=false` must not turn on
            // insecure mode, nor `--no-splice=0` turn off splice. The
            // argument after a flag given without `=` is that flag's value,
            // whatever it looks like (`--tls-key --ws-echo=x` names a file).
            let mut is_value = false;
            for a in &args {
                if std::mem::take(&mut is_value) {
                    continue;
                }
                let switch = matches!(
                    flag_name(a),
                    "--insecure" | "--no-splice" | "--dry-run" | "--ws-echo"
                );
                ensure!(
                    !(a.contains('=') && switch),
                    "switch with a value accepted: {a:?}"
                );
                is_value = a.starts_with("--") && !a.contains('=') && !switch;
            }
        }
        // Help, version, hashing, self-test: only ever asked for by a flag.
        Ok(_) => ensure!(
            args.iter().any(|a| a.starts_with('-')),
            "a command other than run without a flag asking for it"
        ),
        Err(_) => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Verdicts, for inputs whose file name says what must happen to them.

/// Whether `target` accepts `data`: `Some(true)` accepted (for `chunked`: no
/// framing error), `Some(false)` rejected, `None` undecided (an incomplete
/// head, or input a check skips). Committed inputs named `accept-*` must get
/// `Some(true)` and `reject-*` `Some(false)`.
pub fn verdict(target: &str, data: &[u8]) -> Option<bool> {
    match target {
        "request_head" => match parse_request_head(data, &DEFAULT_LIMITS) {
            Ok(Some(_)) => Some(true),
            Ok(None) => None,
            Err(_) => Some(false),
        },
        "response_head" => match parse_response_head(data, 16384, 100, false) {
            Ok(Some(_)) => Some(true),
            Ok(None) => None,
            Err(_) => Some(false),
        },
        "chunked" => {
            let mut t = ChunkedTracker::new();
            Some(t.advance(ChunkedInput::decode(data).message).is_ok())
        }
        "config_file" => {
            let text = String::from_utf8_lossy(data);
            let Ok(file) = config::parse_file(&text) else {
                return Some(false);
            };
            if !file.upstream.as_deref().is_none_or(resolves_offline) {
                return None;
            }
            let path = temp_config_path();
            std::fs::write(&path, text.as_bytes()).ok()?;
            let args = vec!["--config".to_string(), path.to_string_lossy().into_owned()];
            let ok = Config::from_args(&args).is_ok();
            let _ = std::fs::remove_file(&path);
            Some(ok)
        }
        "route" => {
            let (&m, rest) = data.split_first()?;
            let mut target = String::from_utf8_lossy(rest).into_owned();
            if !target.starts_with('/') {
                target.insert(0, '/');
            }
            match match_route(ROUTE_METHODS[usize::from(m) % ROUTE_METHODS.len()], &target) {
                Ok(Matched::Route(_)) => Some(true),
                Ok(Matched::NoRoute) => None,
                Err(_) => Some(false),
            }
        }
        "policy" => {
            let [k, flags, body @ ..] = data else {
                return None;
            };
            let body = with_bind_root(body);
            Some(check_body(body_kind(*k), content_type(*k), &body, &fuzz_policy(*flags)).is_ok())
        }
        "build_query" => {
            let (&flags, rest) = data.split_first()?;
            let target = format!("/build?{}", String::from_utf8_lossy(rest));
            Some(check_build_query(&target, &fuzz_policy(flags)).is_ok())
        }
        "inflate_segment" => {
            let (&mode, rest) = data.split_first()?;
            let mut buf = vec![0u8; SEGMENT_BUFFER];
            (mode & 1 == 0).then(|| inflater::inflate_segment(rest, &mut buf).is_ok())
        }
        "ws_frame" => {
            let [cfg, split, rest @ ..] = data else {
                return None;
            };
            let max = [16u64, 125, 1000, 1 << 20][usize::from(cfg & 3)];
            let stream = &rest[usize::from(split & 7).min(rest.len())..];
            let run = ws_run(stream, &[stream.len()], stream.len().max(MIN_BUFFER) + 1, max).ok()?;
            Some(run.1.is_none())
        }
        "auth_header" => {
            let (&which, v) = data.split_first()?;
            let text = String::from_utf8_lossy(v);
            Some(match which % 7 {
                0 => parse_authorization(v).is_some(),
                1 => parse_cookie(v, COOKIE).is_some(),
                2 => parse_subprotocol(v).is_some(),
                3 => dockermand::crypto::base64::decode(v).is_some(),
                4 => PasswordHash::parse(&text).is_ok(),
                5 => from_hex(&text).is_some(),
                _ => return None,
            })
        }
        #[cfg(feature = "tls")]
        "cert_names" => Some(read_cert_names(data).is_ok()),
        "config_args" => {
            let text = String::from_utf8_lossy(data);
            let args: Vec<String> = if text.is_empty() {
                Vec::new()
            } else {
                text.split('\0').map(str::to_string).collect()
            };
            if args
                .iter()
                .any(|a| a.starts_with("--config") || !resolves_offline(a))
            {
                return None;
            }
            Some(Config::from_args(&args).is_ok())
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// route

use dockermand::access::route::{match_route, Matched, PathError, ROUTES};

/// Methods a route input picks from with its first byte.
pub const ROUTE_METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get"];

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The path as a router reads it: every escape decoded, or all but `%2F`.
fn model_unescape(raw: &[u8], keep_slash: bool) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&b, tail)) = rest.split_first() {
        if b != b'%' {
            out.push(b);
            rest = tail;
            continue;
        }
        let (Some(hi), Some(lo)) = (
            tail.first().copied().and_then(hex_digit),
            tail.get(1).copied().and_then(hex_digit),
        ) else {
            return Err(PathError::BadEscape);
        };
        let v = hi << 4 | lo;
        if v == 0 {
            return Err(PathError::NulByte);
        }
        if keep_slash && v == b'/' {
            out.extend_from_slice(&rest[..3]);
        } else {
            out.push(v);
        }
        rest = &tail[2..];
    }
    Ok(out)
}

/// `^/v[0-9.]+(/.*)$`: the length of the prefix and the rest.
fn model_strip_version(p: &str) -> (usize, &str) {
    if let Some(rest) = p.strip_prefix("/v") {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n > 0 && rest[n..].starts_with('/') {
            return (2 + n, &rest[n..]);
        }
    }
    (0, p)
}

/// The API version of a `/v...` prefix as dockerd compares it: dotted
/// numbers, missing parts read as 0. `Err(BadVersion)` for an empty part or
/// one of more than 9 digits (no API version is that long; refusing them
/// avoids guessing how an overflow reads), `Err(OldVersion)` below 1.24.
fn model_version(v: &str) -> Result<(), PathError> {
    let mut numbers = Vec::new();
    for part in v.split('.') {
        if part.is_empty() || part.len() > 9 {
            return Err(PathError::BadVersion);
        }
        numbers.push(part.parse::<u64>().map_err(|_| PathError::BadVersion)?);
    }
    let major = numbers.first().copied().unwrap_or(0);
    let minor = numbers.get(1).copied().unwrap_or(0);
    if major < 1 || (major == 1 && minor < 24) {
        return Err(PathError::OldVersion);
    }
    Ok(())
}

/// A route pattern as a regular expression would read it: `{x}` is
/// `[^/]+` and `{x*}` is `.+`.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    match pattern.find('{') {
        None => pattern == path,
        Some(open) => {
            let Some(lit_rest) = path.strip_prefix(&pattern[..open]) else {
                return false;
            };
            let close = pattern[open..].find('}').map_or(pattern.len(), |c| open + c + 1);
            let greedy = pattern[..close].ends_with("*}");
            let after = &pattern[close..];
            (1..=lit_rest.len())
                .filter(|&k| lit_rest.is_char_boundary(k))
                .take_while(|&k| greedy || !lit_rest[..k].contains('/'))
                .any(|k| pattern_matches(after, &lit_rest[k..]))
        }
    }
}

fn model_lookup(method: &str, path: &str) -> Option<usize> {
    ROUTES
        .iter()
        .position(|r| r.method == method && pattern_matches(r.pattern, path))
}

/// Reference routing: both readers of the path (escapes all decoded, or
/// `%2F` kept) must agree, else the path is ambiguous.
fn model_route(method: &str, target: &str) -> Result<Option<usize>, PathError> {
    let raw = target.split('?').next().unwrap_or("");
    let full = model_unescape(raw.as_bytes(), false)?;
    if full.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlChar);
    }
    let full = String::from_utf8(full).map_err(|_| PathError::NotUtf8)?;
    let (prefix, path) = model_strip_version(&full);
    if prefix > 0 {
        model_version(&full[2..prefix])?;
    }
    let Some(segments) = path.strip_prefix('/') else {
        return Err(PathError::EmptySegment);
    };
    for seg in segments.split('/') {
        if seg.is_empty() {
            return Err(PathError::EmptySegment);
        }
        if seg == "." || seg == ".." {
            return Err(PathError::DotSegment);
        }
    }
    let found = model_lookup(method, path);
    if raw.contains('%') {
        let kept =
            String::from_utf8(model_unescape(raw.as_bytes(), true)?).map_err(|_| PathError::NotUtf8)?;
        let (kept_prefix, kept_path) = model_strip_version(&kept);
        if kept_prefix != prefix || model_lookup(method, kept_path) != found {
            return Err(PathError::AmbiguousSlash);
        }
    }
    Ok(found)
}

fn as_index(m: Result<Matched, PathError>) -> Result<Option<usize>, PathError> {
    m.map(|m| match m {
        Matched::Route(r) => ROUTES.iter().position(|x| x == r),
        Matched::NoRoute => None,
    })
}

/// Fuzz target `route`: the first byte picks the method, the rest is the
/// request target (a `/` is put in front if it has none).
pub fn route(data: &[u8]) -> Check {
    let Some((&m, rest)) = data.split_first() else {
        return Ok(());
    };
    let method = ROUTE_METHODS[usize::from(m) % ROUTE_METHODS.len()];
    let mut target = String::from_utf8_lossy(rest).into_owned();
    if !target.starts_with('/') {
        target.insert(0, '/');
    }
    let got = match_route(method, &target);
    if let Ok(Matched::Route(r)) = got {
        ensure!(
            r.method == method,
            "{method} {target:?} matched a {} route",
            r.method
        );
    }
    let got = as_index(got);
    let want = model_route(method, &target);
    ensure!(
        got == want,
        "{method} {target:?}: routed to {got:?}, reference {want:?}"
    );

    // The query never changes the route.
    let path = target.split('?').next().unwrap_or("");
    ensure!(
        as_index(match_route(method, path)) == got,
        "{method} {target:?}: the query changes the route"
    );
    // Neither does an API version prefix on a path that has none.
    let versioned = model_unescape(path.as_bytes(), false)
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
        .is_some_and(|p| model_strip_version(&p).0 > 0);
    if !versioned {
        let with = format!("/v1.41{target}");
        ensure!(
            as_index(match_route(method, &with)) == got,
            "{method} {target:?}: /v1.41 changes the route"
        );
    }
    // Nor escaping a letter or digit of the path.
    if let Some(i) = path
        .bytes()
        .enumerate()
        .filter(|&(i, b)| {
            b.is_ascii_alphanumeric() && !path.as_bytes()[i.saturating_sub(2)..i].contains(&b'%')
        })
        .map(|(i, _)| i)
        .nth(usize::from(m) % 7)
    {
        let b = path.as_bytes()[i];
        let escaped = if m & 8 == 0 {
            format!("%{b:02X}")
        } else {
            format!("%{b:02x}")
        };
        let other = format!("{}{escaped}{}", &target[..i], &target[i + 1..]);
        let again = as_index(match_route(method, &other));
        ensure!(
            again == got,
            "{method} {other:?} routes to {again:?}, {target:?} to {got:?}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// policy

use dockermand::access::policy::{check_body, check_build_query, Policy};
use dockermand::access::route::BodyCheck;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Body kinds a policy input picks with the low 4 bits of its first byte
/// (mod 9): the digits `0` to `8` pick them in this order.
pub const BODY_KINDS: [BodyCheck; 9] = [
    BodyCheck::ContainerCreate,
    BodyCheck::ContainerUpdate,
    BodyCheck::ExecCreate,
    BodyCheck::VolumeCreate,
    BodyCheck::Commit,
    BodyCheck::PluginPrivileges,
    BodyCheck::NetworkCreate,
    BodyCheck::NetworkConnect,
    BodyCheck::NetworkDisconnect,
];

/// Content-Types a policy input picks with bits 4 to 6 of its first byte:
/// digits send none, `@` and capitals `application/json`, `P` and on a
/// spelling with a parameter, lower case `text/plain` (`` ` `` to `o`) or a
/// form (`p` to `x`).
const CONTENT_TYPES: [Option<&[u8]>; 8] = [
    Some(b""),
    Some(b"application/json"),
    Some(b" application/JSON ;charset=utf-8"),
    None,
    Some(b"application/json"),
    Some(b"Application/JSON; charset=utf-8"),
    Some(b"text/plain"),
    Some(b"application/x-www-form-urlencoded"),
];

fn body_kind(k: u8) -> BodyCheck {
    BODY_KINDS[usize::from(k & 0x0f) % BODY_KINDS.len()]
}

fn content_type(k: u8) -> Option<&'static [u8]> {
    CONTENT_TYPES[usize::from(k >> 4 & 7)]
}

/// A host tree made once per process for the policy's bind directories,
/// under the system's temporary directory:
///
/// ```text
/// binds/            a bind directory
///   app/            a directory: may be bound
///     sub/          too deep: may not
///   file            a file: may be bound
///   link -> /       a symbolic link: may not
///   gone -> ../none a dangling symbolic link: may not
/// data/             a bind directory
///   x/              may be bound
/// outside/          in no policy
/// ```
///
/// Inputs name it as `$R`, which is replaced by its path before the check
/// (so committed inputs hold no path of the machine they were made on).
pub fn bind_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("dockermand-fuzz-{}", std::process::id()));
        let shown = root.to_string_lossy();
        assert!(
            !shown.contains([':', ',', '"', '\\', '$']),
            "temporary directory {shown:?} cannot be written into a bind string"
        );
        remove_stale_bind_roots();
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["binds/app/sub", "data/x", "outside"] {
            std::fs::create_dir_all(root.join(dir)).expect("creating the bind tree");
        }
        std::fs::write(root.join("binds/file"), b"x").expect("creating the bind tree");
        std::os::unix::fs::symlink("/", root.join("binds/link")).expect("creating the bind tree");
        std::os::unix::fs::symlink("../none", root.join("binds/gone")).expect("creating the bind tree");
        root
    })
}

/// Removes the bind trees of processes that are gone (where `/proc` tells).
fn remove_stale_bind_roots() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("dockermand-fuzz-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The entries of the bind tree that a bind may name.
const BINDABLE: [&str; 3] = ["binds/app", "binds/file", "data/x"];

/// The input with `$R` replaced by the bind tree's path.
pub fn with_bind_root(data: &[u8]) -> Vec<u8> {
    let root = bind_root().to_string_lossy().into_owned();
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut rest = data;
    while let Some(i) = rest.windows(2).position(|w| w == b"$R") {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(root.as_bytes());
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
    out
}

/// The policy under test: binds from `binds/` and `data/` of the bind tree,
/// two capabilities, and the switches from the bits of `flags`: the
/// `allow_*` ones from bits 0 to 5 (privileged, devices, host namespaces,
/// host network, volumes-from, unconfined), and from bit 6 the volume types
/// `tmpfs` and `nfs` and the AppArmor profile `docker-default`.
pub fn fuzz_policy(flags: u8) -> Policy {
    let root = bind_root();
    let named = |names: &[&str]| -> Vec<String> {
        if flags & 64 != 0 {
            names.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        }
    };
    Policy {
        bind_dirs: vec![root.join("binds"), root.join("data")],
        cap_add_allow: vec!["NET_ADMIN".into(), "CHOWN".into()],
        volume_types: named(&["tmpfs", "nfs"]),
        apparmor_profiles: named(&["docker-default"]),
        allow_privileged: flags & 1 != 0,
        allow_devices: flags & 2 != 0,
        allow_host_namespaces: flags & 4 != 0,
        allow_host_network: flags & 8 != 0,
        allow_volumes_from: flags & 16 != 0,
        allow_unconfined: flags & 32 != 0,
        ..Policy::default()
    }
}

/// What the model knows about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sure {
    /// It lets the container reach the host, or the contract refuses it.
    Deny(String),
    /// It is made only of settings known to be harmless.
    Allow,
    /// The model cannot tell.
    Unsure,
}

/// What the kernel would mount for a bind of `raw`, as far as the model
/// knows the bind tree: `Allow` for one of its bindable entries, `Deny` for
/// any other path (the bind dirs themselves, anything deeper, the symbolic
/// links, missing entries, anything outside). Paths that climb (`..`) to a
/// bindable entry, and very long ones, are left undecided.
fn model_host_path(raw: &str) -> Sure {
    if !raw.starts_with('/') {
        return Sure::Unsure;
    }
    let mut parts: Vec<&str> = Vec::new();
    let mut climbs = false;
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                climbs = true;
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let path = format!("/{}", parts.join("/"));
    let root = bind_root().to_string_lossy();
    if !BINDABLE.iter().any(|e| path == format!("{root}/{e}")) {
        Sure::Deny(format!("bind of {raw:?} ({path})"))
    } else if climbs || raw.len() > 1024 {
        Sure::Unsure
    } else {
        Sure::Allow
    }
}

/// JSON with object keys in order, duplicates kept.
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> serde::Deserialize<'de> for J {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<J, E> {
                Ok(J::Num(n as f64))
            }
            fn visit_u64<E>(self, n: u64) -> Result<J, E> {
                Ok(J::Num(n as f64))
            }
            fn visit_f64<E>(self, n: f64) -> Result<J, E> {
                Ok(J::Num(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Str(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element()? {
                    items.push(v);
                }
                Ok(J::Arr(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
                let mut entries = Vec::new();
                while let Some(e) = map.next_entry()? {
                    entries.push(e);
                }
                Ok(J::Obj(entries))
            }
        }
        d.deserialize_any(V)
    }
}

// --- The body as dockerd decodes it (Go's `encoding/json`), for `Deny`.

/// Go types of the fields the model looks at, as dockerd declares them.
enum Ty {
    Bool,
    Str,
    /// Any Go number type.
    Num,
    /// `strslice.StrSlice`: a string or a list, replaced whole.
    StrSlice,
    List(&'static Ty),
    Ptr(&'static Ty),
    Struct(&'static [(&'static str, Ty)]),
    /// `map[string]T`.
    Map(&'static Ty),
    /// A field whose content does not matter.
    Any,
}

/// A decoded Go value. Lists keep their whole backing array: Go's decoder
/// decodes a JSON array into the elements already there (up to the old
/// capacity) instead of zeroed ones, so struct elements merge.
#[derive(Debug, Clone)]
enum G {
    Zero,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<G>, usize),
    Ptr(Option<Box<G>>),
    Struct(Vec<G>),
    Map(Vec<(String, G)>),
}

fn go_zero(ty: &Ty) -> G {
    match ty {
        Ty::Bool => G::Bool(false),
        Ty::Str => G::Str(String::new()),
        Ty::Num => G::Num(0.0),
        Ty::StrSlice | Ty::List(_) => G::List(Vec::new(), 0),
        Ty::Ptr(_) => G::Ptr(None),
        Ty::Struct(fields) => G::Struct(fields.iter().map(|_| G::Zero).collect()),
        Ty::Map(_) => G::Map(Vec::new()),
        Ty::Any => G::Zero,
    }
}

/// Go's case folding of a struct field name (ASCII case, plus the Kelvin
/// sign and long s, which fold onto ASCII letters).
fn go_fold_eq(a: &str, b: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212A}' => 'K',
        '\u{17F}' => 'S',
        c => c.to_ascii_uppercase(),
    };
    a.chars().map(fold).eq(b.chars().map(fold))
}

fn go_field(fields: &[(&str, Ty)], key: &str) -> Option<usize> {
    fields
        .iter()
        .position(|(n, _)| *n == key)
        .or_else(|| fields.iter().position(|(n, _)| go_fold_eq(n, key)))
}

/// Decodes `j` into `g` as `encoding/json` does. `Err` means Go reports an
/// error, and dockerd refuses the request.
fn go_decode(ty: &Ty, g: &mut G, j: &J) -> Result<(), ()> {
    if matches!(g, G::Zero) {
        *g = go_zero(ty);
    }
    match (ty, j) {
        (Ty::Any, _) => Ok(()),
        (Ty::Bool | Ty::Str | Ty::Num | Ty::Struct(_), J::Null) => Ok(()),
        (Ty::Bool, J::Bool(b)) => {
            *g = G::Bool(*b);
            Ok(())
        }
        (Ty::Str, J::Str(s)) => {
            *g = G::Str(s.clone());
            Ok(())
        }
        (Ty::Num, J::Num(n)) => {
            *g = G::Num(*n);
            Ok(())
        }
        (Ty::StrSlice | Ty::List(_), J::Null) => {
            *g = G::List(Vec::new(), 0);
            Ok(())
        }
        // An empty array gets a new empty slice, dropping the old elements.
        (Ty::List(_), J::Arr(items)) if items.is_empty() => {
            *g = G::List(Vec::new(), 0);
            Ok(())
        }
        (Ty::StrSlice, J::Str(s)) => {
            *g = G::List(vec![G::Str(s.clone())], 1);
            Ok(())
        }
        (Ty::StrSlice, J::Arr(items)) => {
            let mut v = Vec::new();
            for item in items {
                match item {
                    J::Str(s) => v.push(G::Str(s.clone())),
                    J::Null => v.push(G::Str(String::new())),
                    _ => return Err(()),
                }
            }
            let n = v.len();
            *g = G::List(v, n);
            Ok(())
        }
        (Ty::List(elem), J::Arr(items)) => {
            let G::List(backing, len) = g else {
                return Err(());
            };
            for (i, item) in items.iter().enumerate() {
                if i >= backing.len() {
                    backing.push(G::Zero);
                }
                go_decode(elem, &mut backing[i], item)?;
            }
            *len = items.len();
            Ok(())
        }
        (Ty::Ptr(_), J::Null) => {
            *g = G::Ptr(None);
            Ok(())
        }
        (Ty::Ptr(inner), _) => {
            let G::Ptr(p) = g else { return Err(()) };
            go_decode(inner, p.get_or_insert_with(|| Box::new(G::Zero)), j)
        }
        (Ty::Struct(fields), J::Obj(entries)) => {
            let G::Struct(values) = g else { return Err(()) };
            for (k, v) in entries {
                if let Some(i) = go_field(fields, k) {
                    go_decode(&fields[i].1, &mut values[i], v)?;
                }
            }
            Ok(())
        }
        (Ty::Map(_), J::Null) => {
            *g = G::Map(Vec::new());
            Ok(())
        }
        // Into the map already there; each value decoded into a new zero.
        (Ty::Map(elem), J::Obj(entries)) => {
            let G::Map(map) = g else { return Err(()) };
            for (k, v) in entries {
                let mut value = G::Zero;
                go_decode(elem, &mut value, v)?;
                match map.iter_mut().find(|(mk, _)| mk == k) {
                    Some(slot) => slot.1 = value,
                    None => map.push((k.clone(), value)),
                }
            }
            Ok(())
        }
        _ => Err(()),
    }
}

const STR: Ty = Ty::Str;
const ANY: Ty = Ty::Any;
const STRS: Ty = Ty::List(&STR);
const DRIVER_CONFIG: Ty = Ty::Struct(&[("Name", Ty::Str), ("Options", Ty::Map(&STR))]);
const VOLUME_OPTIONS: Ty = Ty::Struct(&[
    ("NoCopy", Ty::Bool),
    ("Labels", Ty::Map(&STR)),
    ("Subpath", Ty::Str),
    ("DriverConfig", Ty::Ptr(&DRIVER_CONFIG)),
]);
const BIND_OPTIONS: Ty = Ty::Struct(&[("Propagation", Ty::Str), ("CreateMountpoint", Ty::Bool)]);
const MOUNT: Ty = Ty::Struct(&[
    ("Type", Ty::Str),
    ("Source", Ty::Str),
    ("Target", Ty::Str),
    ("ReadOnly", Ty::Bool),
    ("BindOptions", Ty::Ptr(&BIND_OPTIONS)),
    ("VolumeOptions", Ty::Ptr(&VOLUME_OPTIONS)),
]);
const LOG_CONFIG: Ty = Ty::Struct(&[("Type", Ty::Str), ("Config", Ty::Map(&STR))]);
/// The fields of `container.HostConfig` (with its embedded `Resources`)
/// that the model is about.
const HOST_CONFIG_FIELDS: &[(&str, Ty)] = &[
    ("Binds", Ty::List(&STR)),
    ("NetworkMode", Ty::Str),
    ("VolumesFrom", Ty::List(&STR)),
    ("CapAdd", Ty::StrSlice),
    ("CgroupnsMode", Ty::Str),
    ("IpcMode", Ty::Str),
    ("PidMode", Ty::Str),
    ("Privileged", Ty::Bool),
    ("SecurityOpt", Ty::List(&STR)),
    ("UTSMode", Ty::Str),
    ("UsernsMode", Ty::Str),
    ("Devices", Ty::List(&ANY)),
    ("DeviceCgroupRules", Ty::List(&STR)),
    ("DeviceRequests", Ty::List(&ANY)),
    ("Mounts", Ty::List(&MOUNT)),
    // A nil slice keeps the default masks; any other (even empty) replaces them.
    ("MaskedPaths", Ty::Ptr(&STRS)),
    ("ReadonlyPaths", Ty::Ptr(&STRS)),
    ("OomScoreAdj", Ty::Num),
    ("Runtime", Ty::Str),
    ("LogConfig", LOG_CONFIG),
    ("VolumeDriver", Ty::Str),
    ("CgroupParent", Ty::Str),
    ("Sysctls", Ty::Map(&STR)),
];
const HOST_CONFIG: Ty = Ty::Struct(HOST_CONFIG_FIELDS);
const ENDPOINT: Ty = Ty::Struct(&[("NetworkID", Ty::Str), ("Aliases", Ty::List(&STR))]);
const NETWORKING_CONFIG: Ty = Ty::Struct(&[("EndpointsConfig", Ty::Map(&Ty::Ptr(&ENDPOINT)))]);

fn g_get<'a>(g: Option<&'a G>, ty: &Ty, name: &str) -> Option<&'a G> {
    let (Ty::Struct(fields), Some(G::Struct(values))) = (ty, g) else {
        return None;
    };
    let i = fields.iter().position(|(n, _)| *n == name)?;
    Some(&values[i])
}

fn hc_get<'a>(hc: &'a G, name: &str) -> Option<&'a G> {
    g_get(Some(hc), &HOST_CONFIG, name)
}

fn g_str(g: Option<&G>) -> &str {
    match g {
        Some(G::Str(s)) => s,
        _ => "",
    }
}

fn g_list(g: Option<&G>) -> &[G] {
    match g {
        Some(G::List(items, len)) => &items[..*len],
        _ => &[],
    }
}

fn g_strings(g: Option<&G>) -> Vec<&str> {
    g_list(g).iter().map(|x| g_str(Some(x))).collect()
}

fn g_map(g: Option<&G>) -> &[(String, G)] {
    match g {
        Some(G::Map(entries)) => entries,
        _ => &[],
    }
}

fn ptr_inner(g: Option<&G>) -> Option<&G> {
    match g {
        Some(G::Ptr(Some(b))) => Some(b),
        _ => None,
    }
}

/// Capabilities the kernel knows; dockerd refuses other names.
const CAPABILITIES: &[&str] = &[
    "ALL",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A capability dockerd would grant that the policy does not list. dockerd
/// upper-cases with Unicode rules (`strings.ToUpper`) and adds `CAP_`.
fn model_cap_danger(cap: &str, policy: &Policy) -> Option<String> {
    let upper = cap.trim().to_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    (CAPABILITIES.contains(&bare) && !policy.cap_add_allow.iter().any(|a| a == bare))
        .then(|| format!("capability {cap:?}"))
}

/// A network a container would join that may be the host's: `host` itself,
/// or a name made only of hex digits, which dockerd also reads as a prefix
/// of a network ID (the host network's, perhaps); or another container's
/// network namespace, which may be the host's.
fn model_network_danger(name: &str, policy: &Policy) -> Option<String> {
    if name.starts_with("container:") {
        return Some(format!("network {name:?} (another container's namespace)"));
    }
    let host = name == "host" || (!name.is_empty() && name.bytes().all(|b| b.is_ascii_hexdigit()));
    (host && !policy.allow_host_network).then(|| format!("network {name:?} (may be the host's)"))
}

/// The local volume driver's options that mount something of the host's:
/// a filesystem type the policy does not list (`proc`, `ext4` on a disk,
/// `overlay`), a bind, or overlay directories.
fn model_volume_opts_danger(opts: &[(String, G)], policy: &Policy) -> Option<String> {
    let get = |k: &str| opts.iter().find(|(mk, _)| mk == k).map(|(_, v)| g_str(Some(v)));
    if let Some(t) = get("type") {
        if !t.is_empty() && !policy.volume_types.iter().any(|v| v == t) {
            return Some(format!("local volume of type {t:?}"));
        }
    }
    let o = get("o").unwrap_or("");
    let bind = o.split(',').any(|t| matches!(t.trim(), "bind" | "rbind"));
    if bind || o.contains("lowerdir=") || o.contains("upperdir=") {
        return Some(format!("local volume with o={o:?}"));
    }
    None
}

/// How dockerd splits a security option: at `=`, or at `:` (deprecated)
/// when there is none.
fn model_security_opt_danger(opt: &str, policy: &Policy) -> Option<String> {
    if policy.allow_unconfined {
        return None;
    }
    let (key, value) = if let Some(kv) = opt.split_once('=') {
        kv
    } else {
        opt.split_once(':').unwrap_or((opt, ""))
    };
    let danger = match key {
        "disable" => opt == "disable",
        "label" | "seccomp" => true,
        "apparmor" => !policy.apparmor_profiles.iter().any(|p| p == value),
        "writable-cgroups" => matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True"),
        _ => false,
    };
    danger.then(|| format!("SecurityOpt {opt:?}"))
}

/// What a decoded `HostConfig` lets the container do that the policy forbids.
fn model_host_config_danger(hc: &G, policy: &Policy) -> Option<String> {
    let p = policy;
    if matches!(hc_get(hc, "Privileged"), Some(G::Bool(true))) && !p.allow_privileged {
        return Some("Privileged".into());
    }
    for cap in g_strings(hc_get(hc, "CapAdd")) {
        if let Some(d) = model_cap_danger(cap, p) {
            return Some(d);
        }
    }
    for f in ["Devices", "DeviceRequests", "DeviceCgroupRules"] {
        if !g_list(hc_get(hc, f)).is_empty() && !p.allow_devices {
            return Some(f.into());
        }
    }
    for f in ["PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"] {
        let mode = g_str(hc_get(hc, f));
        if mode == "host" && !p.allow_host_namespaces {
            return Some(format!("{f}=host"));
        }
        if mode.starts_with("container:") && matches!(f, "PidMode" | "IpcMode") {
            return Some(format!("{f}={mode:?}"));
        }
    }
    if let Some(d) = model_network_danger(g_str(hc_get(hc, "NetworkMode")), p) {
        return Some(format!("NetworkMode: {d}"));
    }
    for bind in g_strings(hc_get(hc, "Binds")) {
        let parts: Vec<&str> = bind.split(':').collect();
        if !(2..=3).contains(&parts.len()) || !parts[0].starts_with('/') {
            continue;
        }
        if let Sure::Deny(d) = model_host_path(parts[0]) {
            return Some(d);
        }
        if parts
            .get(2)
            .is_some_and(|m| m.split(',').any(|o| matches!(o, "shared" | "rshared")))
        {
            return Some(format!("bind {bind:?} propagates mounts to the host"));
        }
    }
    if !g_list(hc_get(hc, "VolumesFrom")).is_empty() && !p.allow_volumes_from {
        return Some("VolumesFrom".into());
    }
    for f in ["MaskedPaths", "ReadonlyPaths"] {
        if ptr_inner(hc_get(hc, f)).is_some() && !p.allow_unconfined {
            return Some(format!("{f} set: unmasks /proc"));
        }
    }
    for opt in g_strings(hc_get(hc, "SecurityOpt")) {
        if let Some(d) = model_security_opt_danger(opt, p) {
            return Some(d);
        }
    }
    if matches!(hc_get(hc, "OomScoreAdj"), Some(G::Num(n)) if *n < 0.0) {
        return Some("negative OomScoreAdj".into());
    }
    let runtime = g_str(hc_get(hc, "Runtime"));
    if !matches!(runtime, "" | "runc") {
        return Some(format!("Runtime {runtime:?}"));
    }
    let log = g_str(g_get(hc_get(hc, "LogConfig"), &LOG_CONFIG, "Type"));
    if matches!(
        log,
        "fluentd" | "gelf" | "splunk" | "awslogs" | "gcplogs" | "logentries"
    ) {
        return Some(format!("log driver {log:?} sends logs away"));
    }
    let driver = g_str(hc_get(hc, "VolumeDriver"));
    if !matches!(driver, "" | "local") {
        return Some(format!("VolumeDriver {driver:?}"));
    }
    if !g_str(hc_get(hc, "CgroupParent")).is_empty() {
        return Some("CgroupParent".into());
    }
    if let Some((k, _)) = g_map(hc_get(hc, "Sysctls"))
        .iter()
        .find(|(k, _)| !k.starts_with("net."))
    {
        return Some(format!("sysctl {k:?}"));
    }
    for m in g_list(hc_get(hc, "Mounts")) {
        let kind = g_str(g_get(Some(m), &MOUNT, "Type"));
        let source = g_str(g_get(Some(m), &MOUNT, "Source"));
        if kind == "bind" && source.starts_with('/') {
            if let Sure::Deny(d) = model_host_path(source) {
                return Some(format!("mount: {d}"));
            }
        }
        let bo = ptr_inner(g_get(Some(m), &MOUNT, "BindOptions"));
        let propagation = g_str(g_get(bo, &BIND_OPTIONS, "Propagation"));
        if kind == "bind" && matches!(propagation, "shared" | "rshared") {
            return Some(format!("bind mount with {propagation} propagation"));
        }
        if kind == "volume" {
            let vo = ptr_inner(g_get(Some(m), &MOUNT, "VolumeOptions"));
            let dc = ptr_inner(g_get(vo, &VOLUME_OPTIONS, "DriverConfig"));
            let name = g_str(g_get(dc, &DRIVER_CONFIG, "Name"));
            if !matches!(name, "" | "local") {
                return Some(format!("volume driver {name:?}"));
            }
            if let Some(d) = model_volume_opts_danger(g_map(g_get(dc, &DRIVER_CONFIG, "Options")), p) {
                return Some(d);
            }
        }
    }
    None
}

/// Decodes `json` as a `ty`, or `None` where Go reports an error.
fn go_read(ty: &Ty, json: &J) -> Option<G> {
    let mut g = go_zero(ty);
    go_decode(ty, &mut g, json).ok()?;
    Some(g)
}

/// What dockerd would be told to do that the policy forbids, reading the
/// body as `encoding/json` does: duplicates decoded in order into the same
/// value, and for container create both the current request type and the
/// older `runconfig.ContainerConfigWrapper` (dockerd until its API < 1.18
/// compatibility code was removed in 2024), whose deprecated embedded
/// `*HostConfig` took HostConfig fields from the top level of the body when
/// there was no `HostConfig` key.
fn model_body_danger(kind: BodyCheck, json: &J, policy: &Policy) -> Option<String> {
    let p = policy;
    match kind {
        BodyCheck::ContainerCreate => {
            let J::Obj(entries) = json else { return None };
            for old_dockerd in [false, true] {
                let mut inner = G::Ptr(None);
                let mut networking = G::Ptr(None);
                let mut embedded: Option<G> = None;
                let mut failed = false;
                for (k, v) in entries {
                    let r = if go_fold_eq(k, "HostConfig") {
                        go_decode(&Ty::Ptr(&HOST_CONFIG), &mut inner, v)
                    } else if go_fold_eq(k, "NetworkingConfig") {
                        go_decode(&Ty::Ptr(&NETWORKING_CONFIG), &mut networking, v)
                    } else if let (true, Some(i)) = (old_dockerd, go_field(HOST_CONFIG_FIELDS, k)) {
                        let e = embedded.get_or_insert_with(|| go_zero(&HOST_CONFIG));
                        let G::Struct(values) = e else { unreachable!() };
                        go_decode(&HOST_CONFIG_FIELDS[i].1, &mut values[i], v)
                    } else {
                        Ok(())
                    };
                    if r.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    continue;
                }
                let effective = ptr_inner(Some(&inner)).or(embedded.as_ref());
                if let Some(d) = effective.and_then(|hc| model_host_config_danger(hc, p)) {
                    return Some(if old_dockerd {
                        format!("{d} (older dockerd: top-level HostConfig fields)")
                    } else {
                        d
                    });
                }
                let nc = ptr_inner(Some(&networking));
                for (name, _) in g_map(g_get(nc, &NETWORKING_CONFIG, "EndpointsConfig")) {
                    if let Some(d) = model_network_danger(name, p) {
                        return Some(format!("EndpointsConfig: {d}"));
                    }
                }
            }
            None
        }
        BodyCheck::ContainerUpdate => {
            let hc = go_read(&HOST_CONFIG, json)?;
            ["Devices", "DeviceRequests", "DeviceCgroupRules"]
                .into_iter()
                .find(|f| !g_list(hc_get(&hc, f)).is_empty() && !p.allow_devices)
                .map(String::from)
        }
        BodyCheck::ExecCreate => {
            const EXEC: Ty = Ty::Struct(&[("Privileged", Ty::Bool)]);
            let e = go_read(&EXEC, json)?;
            (matches!(g_get(Some(&e), &EXEC, "Privileged"), Some(G::Bool(true))) && !p.allow_privileged)
                .then(|| "exec Privileged".into())
        }
        BodyCheck::VolumeCreate => {
            const VOLUME: Ty = Ty::Struct(&[("Driver", Ty::Str), ("DriverOpts", Ty::Map(&STR))]);
            let v = go_read(&VOLUME, json)?;
            let driver = g_str(g_get(Some(&v), &VOLUME, "Driver"));
            if !matches!(driver, "" | "local") {
                return Some(format!("volume driver {driver:?}"));
            }
            model_volume_opts_danger(g_map(g_get(Some(&v), &VOLUME, "DriverOpts")), p)
        }
        BodyCheck::NetworkCreate => {
            const NETWORK: Ty = Ty::Struct(&[("Driver", Ty::Str), ("Options", Ty::Map(&STR))]);
            let n = go_read(&NETWORK, json)?;
            let driver = g_str(g_get(Some(&n), &NETWORK, "Driver"));
            if matches!(driver, "macvlan" | "ipvlan") {
                return Some(format!("network driver {driver:?} reaches the host's LAN"));
            }
            g_map(g_get(Some(&n), &NETWORK, "Options"))
                .iter()
                .find(|(k, v)| k == "com.docker.network.bridge.name" && !g_str(Some(v)).is_empty())
                .map(|(_, v)| format!("bridge named {:?} (may be the host's)", g_str(Some(v))))
        }
        BodyCheck::PluginPrivileges => {
            const PRIVILEGE: Ty = Ty::Struct(&[("Name", Ty::Str), ("Value", Ty::List(&STR))]);
            let list = go_read(&Ty::List(&PRIVILEGE), json)?;
            for item in g_list(Some(&list)) {
                let name = g_str(g_get(Some(item), &PRIVILEGE, "Name"));
                let values = g_strings(g_get(Some(item), &PRIVILEGE, "Value"));
                let danger = match name {
                    "network" => values.contains(&"host") && !p.allow_host_network,
                    "mount" => !values.is_empty(),
                    "device" => !values.is_empty() && !p.allow_devices,
                    "allow-all-devices" => !p.allow_devices,
                    "host-pid" | "host-ipc" => !p.allow_host_namespaces,
                    "capabilities" => values.iter().any(|c| model_cap_danger(c, p).is_some()),
                    _ => false,
                };
                if danger {
                    return Some(format!("plugin privilege {name:?} {values:?}"));
                }
            }
            None
        }
        // Nothing the model knows to be dangerous.
        BodyCheck::Commit | BodyCheck::NetworkConnect | BodyCheck::NetworkDisconnect => None,
    }
}

// --- The body as written, for `Allow`.

/// What a field's value must be for the model to call it harmless. `null`
/// always is (Go leaves the field as it was).
#[derive(Clone, Copy)]
enum Safe {
    /// Whatever it holds: names, limits, labels, ports, commands.
    Any,
    Bool,
    Num,
    Str,
    /// A list of strings.
    Strs,
    /// A string or a list of strings (`strslice.StrSlice`).
    StrOrStrs,
    /// An object with string values.
    StrMap,
    /// An object made of these fields.
    Obj(&'static [&'static [(&'static str, Safe)]]),
    List(&'static Safe),
    Test(fn(&J, &Policy) -> bool),
}

/// A key Go could never match to a field of a Docker API struct: their
/// names are identifiers (the Kelvin sign and long s fold onto letters).
fn never_a_field(key: &str) -> bool {
    key.chars()
        .any(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '\u{212A}' || c == '\u{17F}'))
}

/// Go's zero value, recursively: what an unknown field may hold.
fn model_zero(j: &J) -> bool {
    match j {
        J::Null | J::Bool(false) => true,
        J::Num(n) => *n == 0.0,
        J::Str(s) => s.is_empty(),
        J::Arr(items) => items.is_empty(),
        J::Obj(entries) => entries.iter().all(|(_, v)| model_zero(v)),
        J::Bool(true) => false,
    }
}

fn is_str(j: &J) -> bool {
    matches!(j, J::Str(_))
}

fn strs(j: &J) -> Option<Vec<&str>> {
    let J::Arr(items) = j else { return None };
    items
        .iter()
        .map(|i| match i {
            J::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

fn text(j: &J) -> Option<&str> {
    match j {
        J::Str(s) => Some(s),
        _ => None,
    }
}

/// The entries of an object, if no two keys are the same for Go.
fn distinct_entries(j: &J) -> Option<&[(String, J)]> {
    let J::Obj(entries) = j else { return None };
    for (i, (a, _)) in entries.iter().enumerate() {
        if entries[..i].iter().any(|(b, _)| go_fold_eq(a, b)) {
            return None;
        }
    }
    Some(entries)
}

fn harmless(j: &J, safe: &Safe, p: &Policy) -> bool {
    if matches!(j, J::Null) {
        return true;
    }
    match safe {
        Safe::Any => true,
        Safe::Bool => matches!(j, J::Bool(_)),
        Safe::Num => matches!(j, J::Num(_)),
        Safe::Str => is_str(j),
        Safe::Strs => strs(j).is_some(),
        Safe::StrOrStrs => is_str(j) || strs(j).is_some(),
        Safe::StrMap => matches!(j, J::Obj(e) if e.iter().all(|(_, v)| is_str(v))),
        Safe::Obj(tables) => {
            let Some(entries) = distinct_entries(j) else {
                return false;
            };
            entries.iter().all(|(k, v)| {
                let field = tables
                    .iter()
                    .flat_map(|t| t.iter())
                    .find(|(n, _)| go_fold_eq(n, k));
                match field {
                    _ if matches!(v, J::Null) => true,
                    Some((_, s)) => harmless(v, s, p),
                    None => never_a_field(k) && model_zero(v),
                }
            })
        }
        Safe::List(elem) => matches!(j, J::Arr(items) if items.iter().all(|i| harmless(i, elem, p))),
        Safe::Test(f) => f(j, p),
    }
}

/// A volume name as dockerd's local driver takes it.
fn volume_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A network a container may join: the built-in private ones, or a lower
/// case name that is not `host` and cannot be read as an ID (it has a
/// letter after `f`).
fn safe_network(name: &str, p: &Policy) -> bool {
    matches!(name, "" | "default" | "bridge" | "none")
        || (name == "host" && p.allow_host_network)
        || (name != "host"
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
            && name.chars().any(|c| ('g'..='z').contains(&c)))
}

fn safe_bind(j: &J, _: &Policy) -> bool {
    let Some(bind) = text(j) else { return false };
    let parts: Vec<&str> = bind.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return false;
    }
    let source_ok = if parts[0].starts_with('/') {
        model_host_path(parts[0]) == Sure::Allow
    } else {
        volume_name(parts[0])
    };
    let modes = [
        "", "ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "slave", "rslave",
    ];
    source_ok
        && parts
            .get(2)
            .is_none_or(|m| m.split(',').all(|o| modes.contains(&o)))
}

fn safe_network_mode(j: &J, p: &Policy) -> bool {
    text(j).is_some_and(|n| safe_network(n, p))
}

fn safe_endpoints(j: &J, p: &Policy) -> bool {
    let J::Obj(entries) = j else { return false };
    entries.iter().enumerate().all(|(i, (name, v))| {
        !entries[..i].iter().any(|(other, _)| other == name)
            && safe_network(name, p)
            && harmless(v, &Safe::Obj(&[ENDPOINT_SAFE]), p)
    })
}

fn safe_cap_add(j: &J, p: &Policy) -> bool {
    let caps = match j {
        J::Str(s) => vec![s.as_str()],
        _ => match strs(j) {
            Some(caps) => caps,
            None => return false,
        },
    };
    caps.iter().all(|cap| {
        let upper = cap.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        p.cap_add_allow.iter().any(|a| a == bare)
    })
}

fn safe_privileged(j: &J, p: &Policy) -> bool {
    matches!(j, J::Bool(false)) || (matches!(j, J::Bool(true)) && p.allow_privileged)
}

fn one_of(j: &J, allowed: &[&str]) -> bool {
    text(j).is_some_and(|s| allowed.contains(&s))
}

fn host_mode(j: &J, p: &Policy) -> bool {
    p.allow_host_namespaces && one_of(j, &["host"])
}

fn safe_pid_mode(j: &J, p: &Policy) -> bool {
    one_of(j, &[""]) || host_mode(j, p)
}

fn safe_ipc_mode(j: &J, p: &Policy) -> bool {
    one_of(j, &["", "private", "shareable", "none"]) || host_mode(j, p)
}

fn safe_cgroupns_mode(j: &J, p: &Policy) -> bool {
    one_of(j, &["", "private"]) || host_mode(j, p)
}

fn safe_devices(j: &J, p: &Policy) -> bool {
    matches!(j, J::Arr(items) if items.is_empty() || p.allow_devices)
}

fn safe_volumes_from(j: &J, p: &Policy) -> bool {
    strs(j).is_some_and(|v| v.is_empty() || p.allow_volumes_from)
}

fn safe_system_paths(j: &J, p: &Policy) -> bool {
    p.allow_unconfined && strs(j).is_some()
}

fn safe_security_opt(j: &J, p: &Policy) -> bool {
    let Some(opts) = strs(j) else { return false };
    opts.iter().all(|opt| {
        let nnp = ["no-new-privileges=", "no-new-privileges:"]
            .iter()
            .find_map(|k| opt.strip_prefix(k));
        let apparmor = ["apparmor=", "apparmor:"]
            .iter()
            .find_map(|k| opt.strip_prefix(k));
        p.allow_unconfined
            || *opt == "no-new-privileges"
            || nnp.is_some_and(|v| matches!(v, "true" | "false" | "1" | "0"))
            || apparmor.is_some_and(|a| p.apparmor_profiles.iter().any(|x| x == a))
    })
}

fn safe_sysctls(j: &J, _: &Policy) -> bool {
    distinct_entries(j).is_some_and(|e| e.iter().all(|(k, v)| k.starts_with("net.") && is_str(v)))
}

fn safe_oom_score_adj(j: &J, _: &Policy) -> bool {
    matches!(j, J::Num(n) if *n >= 0.0)
}

fn safe_runtime(j: &J, _: &Policy) -> bool {
    one_of(j, &["", "runc"])
}

fn safe_isolation(j: &J, _: &Policy) -> bool {
    one_of(j, &["", "default"])
}

fn safe_log_driver(j: &J, _: &Policy) -> bool {
    one_of(j, &["", "json-file", "local", "none", "journald"])
}

fn safe_local_driver(j: &J, _: &Policy) -> bool {
    one_of(j, &["", "local"])
}

fn safe_propagation(j: &J, _: &Policy) -> bool {
    one_of(j, &["", "private", "rprivate", "slave", "rslave"])
}

/// Options of the local volume driver: a filesystem type the policy lists,
/// any device, and mount options known not to reach the host.
fn safe_driver_opts(j: &J, p: &Policy) -> bool {
    let J::Obj(entries) = j else { return false };
    if entries.is_empty() {
        return true;
    }
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let distinct = keys.iter().enumerate().all(|(i, k)| !keys[..i].contains(k));
    let get = |k: &str| entries.iter().find(|(mk, _)| mk == k).map(|(_, v)| v);
    let safe_option = |o: &str| match o.split_once('=') {
        Some((name, value)) => {
            matches!(
                name,
                "size" | "uid" | "gid" | "mode" | "nr_inodes" | "addr" | "nfsvers" | "vers"
            ) && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == ':')
        }
        None => matches!(
            o,
            "" | "ro" | "rw" | "nolock" | "soft" | "hard" | "noexec" | "nosuid" | "nodev"
        ),
    };
    distinct
        && entries
            .iter()
            .all(|(k, v)| matches!(k.as_str(), "type" | "device" | "o") && is_str(v))
        && get("type")
            .and_then(text)
            .is_some_and(|t| p.volume_types.iter().any(|v| v == t))
        && get("o")
            .and_then(text)
            .is_none_or(|o| o.split(',').all(safe_option))
}

/// A mount of a known type whose source fits it.
fn safe_mount(j: &J, p: &Policy) -> bool {
    if !harmless(j, &Safe::Obj(&[MOUNT_SAFE]), p) {
        return false;
    }
    let J::Obj(entries) = j else { return false };
    let get = |name: &str| entries.iter().find(|(k, _)| go_fold_eq(k, name)).map(|(_, v)| v);
    let set = |name: &str| get(name).is_some_and(|v| !matches!(v, J::Null));
    let source = get("Source").and_then(text);
    match get("Type").and_then(text) {
        Some("bind") => {
            source.is_some_and(|s| model_host_path(s) == Sure::Allow)
                && !set("VolumeOptions")
                && !set("TmpfsOptions")
        }
        Some("volume") => source.is_none_or(|s| s.is_empty() || volume_name(s)) && !set("BindOptions"),
        Some("tmpfs") => source.is_none_or(str::is_empty) && !set("BindOptions") && !set("VolumeOptions"),
        _ => false,
    }
}

const CONFIG_SAFE: &[(&str, Safe)] = &[
    ("Hostname", Safe::Str),
    ("Domainname", Safe::Str),
    ("User", Safe::Str),
    ("AttachStdin", Safe::Bool),
    ("AttachStdout", Safe::Bool),
    ("AttachStderr", Safe::Bool),
    ("ExposedPorts", Safe::Any),
    ("Tty", Safe::Bool),
    ("OpenStdin", Safe::Bool),
    ("StdinOnce", Safe::Bool),
    ("Env", Safe::Strs),
    ("Cmd", Safe::StrOrStrs),
    ("Healthcheck", Safe::Any),
    ("Image", Safe::Str),
    ("Volumes", Safe::Any),
    ("WorkingDir", Safe::Str),
    ("Entrypoint", Safe::StrOrStrs),
    ("NetworkDisabled", Safe::Bool),
    ("OnBuild", Safe::Strs),
    ("Labels", Safe::StrMap),
    ("StopSignal", Safe::Str),
    ("StopTimeout", Safe::Num),
    ("Shell", Safe::Strs),
];

const RESOURCES_SAFE: &[(&str, Safe)] = &[
    ("CpuShares", Safe::Num),
    ("Memory", Safe::Num),
    ("CpuPeriod", Safe::Num),
    ("CpuQuota", Safe::Num),
    ("CpusetCpus", Safe::Str),
    ("CpusetMems", Safe::Str),
    ("BlkioWeight", Safe::Num),
    ("MemoryReservation", Safe::Num),
    ("MemorySwap", Safe::Num),
    ("NanoCpus", Safe::Num),
    ("PidsLimit", Safe::Num),
    ("Ulimits", Safe::Any),
    ("Devices", Safe::Test(safe_devices)),
    ("DeviceCgroupRules", Safe::Test(safe_devices)),
    ("DeviceRequests", Safe::Test(safe_devices)),
];

const LOG_CONFIG_SAFE: &[(&str, Safe)] = &[("Type", Safe::Test(safe_log_driver)), ("Config", Safe::StrMap)];
const RESTART_POLICY_SAFE: &[(&str, Safe)] = &[("Name", Safe::Str), ("MaximumRetryCount", Safe::Num)];

const HOST_CONFIG_SAFE: &[(&str, Safe)] = &[
    ("Binds", Safe::List(&Safe::Test(safe_bind))),
    ("ContainerIDFile", Safe::Str),
    ("LogConfig", Safe::Obj(&[LOG_CONFIG_SAFE])),
    ("NetworkMode", Safe::Test(safe_network_mode)),
    ("PortBindings", Safe::Any),
    ("RestartPolicy", Safe::Obj(&[RESTART_POLICY_SAFE])),
    ("AutoRemove", Safe::Bool),
    ("VolumeDriver", Safe::Test(safe_local_driver)),
    ("VolumesFrom", Safe::Test(safe_volumes_from)),
    ("Mounts", Safe::List(&Safe::Test(safe_mount))),
    ("ConsoleSize", Safe::List(&Safe::Num)),
    ("CapAdd", Safe::Test(safe_cap_add)),
    ("CapDrop", Safe::StrOrStrs),
    ("CgroupnsMode", Safe::Test(safe_cgroupns_mode)),
    ("Dns", Safe::Strs),
    ("DnsOptions", Safe::Strs),
    ("DnsSearch", Safe::Strs),
    ("ExtraHosts", Safe::Strs),
    ("GroupAdd", Safe::Strs),
    ("IpcMode", Safe::Test(safe_ipc_mode)),
    ("Links", Safe::Strs),
    ("OomScoreAdj", Safe::Test(safe_oom_score_adj)),
    ("PidMode", Safe::Test(safe_pid_mode)),
    ("Privileged", Safe::Test(safe_privileged)),
    ("PublishAllPorts", Safe::Bool),
    ("ReadonlyRootfs", Safe::Bool),
    ("SecurityOpt", Safe::Test(safe_security_opt)),
    ("Tmpfs", Safe::StrMap),
    ("UTSMode", Safe::Test(safe_pid_mode)),
    ("UsernsMode", Safe::Test(safe_pid_mode)),
    ("ShmSize", Safe::Num),
    ("Sysctls", Safe::Test(safe_sysctls)),
    ("Runtime", Safe::Test(safe_runtime)),
    ("Isolation", Safe::Test(safe_isolation)),
    ("MaskedPaths", Safe::Test(safe_system_paths)),
    ("ReadonlyPaths", Safe::Test(safe_system_paths)),
];

const BIND_OPTIONS_SAFE: &[(&str, Safe)] = &[
    ("Propagation", Safe::Test(safe_propagation)),
    ("NonRecursive", Safe::Bool),
    ("ReadOnlyNonRecursive", Safe::Bool),
];

const DRIVER_CONFIG_SAFE: &[(&str, Safe)] = &[
    ("Name", Safe::Test(safe_local_driver)),
    ("Options", Safe::Test(safe_driver_opts)),
];

const VOLUME_OPTIONS_SAFE: &[(&str, Safe)] = &[
    ("NoCopy", Safe::Bool),
    ("Labels", Safe::StrMap),
    ("DriverConfig", Safe::Obj(&[DRIVER_CONFIG_SAFE])),
];

const MOUNT_SAFE: &[(&str, Safe)] = &[
    ("Type", Safe::Str),
    ("Source", Safe::Str),
    ("Target", Safe::Str),
    ("ReadOnly", Safe::Bool),
    ("Consistency", Safe::Str),
    ("BindOptions", Safe::Obj(&[BIND_OPTIONS_SAFE])),
    ("VolumeOptions", Safe::Obj(&[VOLUME_OPTIONS_SAFE])),
    (
        "TmpfsOptions",
        Safe::Obj(&[&[("SizeBytes", Safe::Num), ("Mode", Safe::Num)]]),
    ),
];

const ENDPOINT_SAFE: &[(&str, Safe)] = &[
    (
        "IPAMConfig",
        Safe::Obj(&[&[("IPv4Address", Safe::Str), ("IPv6Address", Safe::Str)]]),
    ),
    ("Links", Safe::Strs),
    ("Aliases", Safe::Strs),
    ("MacAddress", Safe::Str),
    ("DNSNames", Safe::Strs),
    ("GwPriority", Safe::Num),
];

const CREATE_SAFE: &[(&str, Safe)] = &[
    ("HostConfig", Safe::Obj(&[HOST_CONFIG_SAFE, RESOURCES_SAFE])),
    (
        "NetworkingConfig",
        Safe::Obj(&[&[("EndpointsConfig", Safe::Test(safe_endpoints))]]),
    ),
];

const UPDATE_SAFE: &[(&str, Safe)] = &[("RestartPolicy", Safe::Obj(&[RESTART_POLICY_SAFE]))];

const EXEC_SAFE: &[(&str, Safe)] = &[
    ("AttachStdin", Safe::Bool),
    ("AttachStdout", Safe::Bool),
    ("AttachStderr", Safe::Bool),
    ("ConsoleSize", Safe::List(&Safe::Num)),
    ("DetachKeys", Safe::Str),
    ("Detach", Safe::Bool),
    ("Tty", Safe::Bool),
    ("Env", Safe::Strs),
    ("Cmd", Safe::StrOrStrs),
    ("Privileged", Safe::Test(safe_privileged)),
    ("User", Safe::Str),
    ("WorkingDir", Safe::Str),
];

const VOLUME_SAFE: &[(&str, Safe)] = &[
    ("Name", Safe::Str),
    ("Driver", Safe::Test(safe_local_driver)),
    ("DriverOpts", Safe::Test(safe_driver_opts)),
    ("Labels", Safe::StrMap),
];

fn safe_network_driver(j: &J, _: &Policy) -> bool {
    one_of(j, &["", "bridge"])
}

fn safe_network_scope(j: &J, _: &Policy) -> bool {
    one_of(j, &["", "local"])
}

fn safe_ipam_driver(j: &J, _: &Policy) -> bool {
    one_of(j, &["", "default"])
}

fn safe_bridge_options(j: &J, _: &Policy) -> bool {
    const TUNING: [&str; 4] = [
        "com.docker.network.bridge.enable_icc",
        "com.docker.network.bridge.enable_ip_masquerade",
        "com.docker.network.bridge.host_binding_ipv4",
        "com.docker.network.driver.mtu",
    ];
    matches!(j, J::Obj(e) if e.iter().all(|(k, v)| TUNING.contains(&k.as_str()) && is_str(v)))
}

const NETWORK_CREATE_SAFE: &[(&str, Safe)] = &[
    ("Name", Safe::Str),
    ("CheckDuplicate", Safe::Bool),
    ("Driver", Safe::Test(safe_network_driver)),
    ("Scope", Safe::Test(safe_network_scope)),
    ("Internal", Safe::Bool),
    ("Attachable", Safe::Bool),
    ("EnableIPv4", Safe::Bool),
    ("EnableIPv6", Safe::Bool),
    (
        "IPAM",
        Safe::Obj(&[&[
            ("Driver", Safe::Test(safe_ipam_driver)),
            (
                "Config",
                Safe::List(&Safe::Obj(&[&[
                    ("Subnet", Safe::Str),
                    ("IPRange", Safe::Str),
                    ("Gateway", Safe::Str),
                    ("AuxiliaryAddresses", Safe::StrMap),
                ]])),
            ),
        ]]),
    ),
    ("Options", Safe::Test(safe_bridge_options)),
    ("Labels", Safe::StrMap),
];

const NETWORK_CONNECT_SAFE: &[(&str, Safe)] = &[
    ("Container", Safe::Str),
    ("EndpointConfig", Safe::Obj(&[ENDPOINT_SAFE])),
];

const NETWORK_DISCONNECT_SAFE: &[(&str, Safe)] = &[("Container", Safe::Str), ("Force", Safe::Bool)];

fn safe_privilege(j: &J, p: &Policy) -> bool {
    const PRIVILEGE: &[(&str, Safe)] = &[
        ("Name", Safe::Str),
        ("Description", Safe::Str),
        ("Value", Safe::Strs),
    ];
    let Some(entries) = distinct_entries(j).filter(|_| harmless(j, &Safe::Obj(&[PRIVILEGE]), p)) else {
        return false;
    };
    let get = |name: &str| entries.iter().find(|(k, _)| go_fold_eq(k, name)).map(|(_, v)| v);
    let values = get("Value").and_then(strs).unwrap_or_default();
    get("Name").and_then(text) == Some("network")
        && values.iter().all(|v| *v != "host" || p.allow_host_network)
}

/// Binds and mounts in a body, wherever they are.
fn mount_count(j: &J) -> usize {
    match j {
        J::Arr(items) => items.iter().map(mount_count).sum(),
        J::Obj(entries) => entries
            .iter()
            .map(|(k, v)| match v {
                J::Arr(items) if go_fold_eq(k, "Binds") || go_fold_eq(k, "Mounts") => items.len(),
                _ => mount_count(v),
            })
            .sum(),
        _ => 0,
    }
}

/// Whether the body is made only of settings the model knows are harmless.
fn model_body_harmless(kind: BodyCheck, json: &J, p: &Policy) -> bool {
    fn values(j: &J) -> usize {
        1 + match j {
            J::Arr(items) => items.iter().map(values).sum(),
            J::Obj(entries) => entries.iter().map(|(_, v)| values(v)).sum(),
            _ => 0,
        }
    }
    // Real bodies are far smaller; huge ones may be refused as such.
    if mount_count(json) > 200 || values(json) > 5000 {
        return false;
    }
    let fields: &[&[(&str, Safe)]] = match kind {
        BodyCheck::ContainerCreate => &[CONFIG_SAFE, CREATE_SAFE, HOST_CONFIG_SAFE, RESOURCES_SAFE],
        BodyCheck::ContainerUpdate => &[RESOURCES_SAFE, UPDATE_SAFE],
        BodyCheck::Commit => &[CONFIG_SAFE],
        BodyCheck::ExecCreate => &[EXEC_SAFE],
        BodyCheck::VolumeCreate => &[VOLUME_SAFE],
        BodyCheck::NetworkCreate => &[NETWORK_CREATE_SAFE],
        BodyCheck::NetworkConnect => &[NETWORK_CONNECT_SAFE],
        BodyCheck::NetworkDisconnect => &[NETWORK_DISCONNECT_SAFE],
        BodyCheck::PluginPrivileges => {
            return matches!(json, J::Arr(items) if items.iter().all(|i| safe_privilege(i, p)));
        }
    };
    matches!(json, J::Obj(_)) && harmless(json, &Safe::Obj(fields), p)
}

/// The model's verdict on a whole request body.
fn model_body(kind: BodyCheck, ct: Option<&[u8]>, body: &[u8], p: &Policy) -> Sure {
    if let Some(ct) = ct {
        let media = ct.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
        if !(media.is_empty() || media.eq_ignore_ascii_case(b"application/json")) {
            return Sure::Deny(format!("Content-Type {}", show(ct)));
        }
    }
    if body.is_empty() {
        // dockerd commits with the container's own configuration.
        return if kind == BodyCheck::Commit {
            Sure::Allow
        } else {
            Sure::Deny("no body".into())
        };
    }
    let json: J = match serde_json::from_slice(body) {
        Ok(json) => json,
        Err(e) => return Sure::Deny(format!("not JSON: {e}")),
    };
    let danger = model_body_danger(kind, &json, p);
    let safe = model_body_harmless(kind, &json, p);
    match (danger, safe) {
        (Some(d), false) => Sure::Deny(d),
        (Some(d), true) => Sure::Deny(format!("MODEL CONFLICT: harmless, yet {d}")),
        (None, true) => Sure::Allow,
        (None, false) => Sure::Unsure,
    }
}

/// Fuzz target `policy`: byte 0 picks the body kind (low 4 bits, mod 9, see
/// `BODY_KINDS`) and the Content-Type (bits 4 to 6, see `CONTENT_TYPES`),
/// byte 1 the policy's switches (see `fuzz_policy`), the rest is the body,
/// with `$R` standing for the bind tree (see `bind_root`). Printable seeds:
/// `0@` is container create with no Content-Type under the strict policy
/// with volume types, `2@` exec create, `3@` volume create, `4@` commit.
///
/// Properties: the verdict is deterministic; a denial names its rule (and
/// its field, for a rule about one); a body the model knows to be
/// dangerous (read as Go reads it: any case, escapes, repeated keys merged)
/// is denied, and one it knows to be harmless is allowed.
pub fn policy(data: &[u8]) -> Check {
    let [k, flags, body @ ..] = data else {
        return Ok(());
    };
    let kind = body_kind(*k);
    let ct = content_type(*k);
    let policy = fuzz_policy(*flags);
    let body = with_bind_root(body);
    let verdict = check_body(kind, ct, &body, &policy);
    let again = check_body(kind, ct, &body, &policy);
    ensure!(verdict == again, "check_body is not deterministic");
    if let Err(d) = &verdict {
        ensure!(!d.rule.is_empty(), "denial without a rule");
        // Only a field named by an empty key (`{"":1}`) or an empty plugin
        // privilege name has an empty name.
        let empty_name = body.windows(2).any(|w| w == b"\"\"");
        ensure!(
            !d.field.is_empty()
                || empty_name
                || matches!(
                    d.rule,
                    "empty_body" | "body_size" | "too_complex" | "invalid_json"
                ),
            "denial by rule {} names no field",
            d.rule
        );
    }
    match (model_body(kind, ct, &body, &policy), &verdict) {
        (Sure::Deny(why), Ok(())) => Err(format!("{kind:?} allowed, but dockerd would get: {why}")),
        (Sure::Deny(why), Err(_)) if why.starts_with("MODEL CONFLICT") => Err(why),
        (Sure::Allow, Err(d)) => Err(format!(
            "{kind:?} denied by rule {} ({}: {}), but the model knows it is harmless",
            d.rule, d.field, d.message
        )),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// build_query

/// Decoded `key=value` pairs, in order, as bytes.
type QueryPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Go's `url.ParseQuery` as dockerd's `ParseForm` uses it: `&` separates
/// pairs, a `;` in one is an error, `%XX` and `+` are decoded; values are
/// bytes. `Err` means dockerd refuses the request.
fn go_parse_query(query: &str) -> Result<QueryPairs, String> {
    fn unescape(s: &str) -> Result<Vec<u8>, String> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' => {
                    let hex = |j: usize| b.get(j).copied().and_then(hex_digit);
                    let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                        return Err(format!("bad escape in {s:?}"));
                    };
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Ok(out)
    }
    let mut pairs = Vec::new();
    for pair in query.split('&') {
        if pair.is_empty() {
            continue;
        }
        if pair.contains(';') {
            return Err("semicolon in the query".into());
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((unescape(k)?, unescape(v)?));
    }
    Ok(pairs)
}

/// Build parameters the model knows are harmless whatever their value.
const SAFE_BUILD_PARAMS: [&str; 14] = [
    "t",
    "q",
    "dockerfile",
    "nocache",
    "rm",
    "forcerm",
    "pull",
    "buildargs",
    "labels",
    "memory",
    "cpushares",
    "platform",
    "target",
    "shmsize",
];

/// The model's verdict on a build's query string.
fn model_build_query(query: &str, p: &Policy) -> Sure {
    let pairs = match go_parse_query(query) {
        Ok(pairs) => pairs,
        Err(e) => return Sure::Deny(e),
    };
    for (k, v) in &pairs {
        let value = String::from_utf8_lossy(v);
        match k.as_slice() {
            b"networkmode" => {
                if let Some(d) = model_network_danger(&value, p) {
                    return Sure::Deny(format!("networkmode: {d}"));
                }
            }
            b"cgroupparent" if !v.is_empty() => return Sure::Deny("cgroupparent".into()),
            // BuildKit: its requests travel in a session the policy cannot read.
            b"version" if v == b"2" => return Sure::Deny("BuildKit".into()),
            _ => {}
        }
    }
    // Control characters are left undecided: Go passes them, the policy
    // may refuse them.
    let plain = |b: &[u8]| !b.iter().any(|&c| c < 0x20 || c == 0x7f);
    let harmless = pairs.iter().all(|(k, v)| {
        let Ok(value) = std::str::from_utf8(v) else {
            return false;
        };
        if !plain(k) || !plain(v) {
            return false;
        }
        match std::str::from_utf8(k) {
            Ok("networkmode") => safe_network(value, p),
            Ok("version") => matches!(value, "" | "1"),
            Ok(k) => SAFE_BUILD_PARAMS.contains(&k),
            Err(_) => false,
        }
    });
    if harmless {
        Sure::Allow
    } else {
        Sure::Unsure
    }
}

/// `networkmode=host` with some of its letters percent-encoded (upper or
/// lower case hex), chosen by the bits of `mask`.
fn encoded_host_network(mask: u64) -> String {
    let mut out = String::new();
    for (i, c) in "networkmode=host".chars().enumerate() {
        if c != '=' && mask >> (2 * i) & 1 != 0 {
            if mask >> (2 * i + 1) & 1 != 0 {
                out.push_str(&format!("%{:02x}", c as u8));
            } else {
                out.push_str(&format!("%{:02X}", c as u8));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Fuzz target `build_query`: byte 0 picks the policy's switches (as for
/// `policy`), the rest is the query string of `POST /build`.
///
/// Properties: the verdict is deterministic; it agrees with the model where
/// the model is sure (Go's query parsing; `networkmode` the host's or
/// another container's, a cgroup parent or BuildKit denied; known harmless
/// parameters allowed); and `networkmode=host`, in any percent-encoding,
/// added before or after the query, is denied unless the policy allows the
/// host network, and changes nothing when it does.
pub fn build_query(data: &[u8]) -> Check {
    let Some((&flags, rest)) = data.split_first() else {
        return Ok(());
    };
    let policy = fuzz_policy(flags);
    let query = String::from_utf8_lossy(rest);
    let target = format!("/build?{query}");
    let verdict = check_build_query(&target, &policy);
    ensure!(
        verdict == check_build_query(&target, &policy),
        "check_build_query is not deterministic"
    );
    if let Err(d) = &verdict {
        ensure!(
            !d.rule.is_empty() && !d.field.is_empty(),
            "denial without a rule or field: {d:?}"
        );
    }
    match (model_build_query(&query, &policy), &verdict) {
        (Sure::Deny(why), Ok(())) => return Err(format!("{target:?} allowed, but: {why}")),
        (Sure::Allow, Err(d)) => {
            return Err(format!(
                "{target:?} denied by rule {} ({}), but the model knows it is harmless",
                d.rule, d.field
            ))
        }
        _ => {}
    }
    let mask = rest.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let host = encoded_host_network(mask);
    for with in [format!("/build?{host}&{query}"), format!("/build?{query}&{host}")] {
        let got = check_build_query(&with, &policy);
        if policy.allow_host_network {
            ensure!(
                got == verdict,
                "{with:?}: {got:?}, but {target:?}: {verdict:?} (the host network is allowed)"
            );
        } else {
            ensure!(got.is_err(), "{with:?} allowed: the host network");
            if verdict.is_ok() {
                let rule = got.as_ref().map_err(|d| d.rule);
                ensure!(
                    rule == Err("host_network"),
                    "{with:?}: {rule:?}, not host_network"
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// ws_frame

use dockermand::console::websocket::{
    accept_key, close_payload, encode_frame, encode_header, parse_close, valid_close_code, Decoded, Decoder,
    Opcode, MIN_BUFFER,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    Message(bool, Vec<u8>),
    Control(u8, Vec<u8>),
}

/// Plays the connection: a read buffer of `cap` bytes, the stream arriving
/// in `pieces`, `decode` called until it needs more. Returns the complete
/// messages and control frames, and the close code of the error if any.
fn ws_run(
    stream: &[u8],
    pieces: &[usize],
    cap: usize,
    max: u64,
) -> Result<(Vec<WsEvent>, Option<u16>), String> {
    let mut dec = Decoder::new(max);
    let mut buf: Vec<u8> = Vec::with_capacity(cap);
    let mut events = Vec::new();
    let mut message: Option<(bool, Vec<u8>)> = None;
    let mut pos = 0;
    let mut arrived = 0;
    let mut pieces = pieces.iter();
    loop {
        let take = (cap - buf.len()).min(arrived - pos);
        buf.extend_from_slice(&stream[pos..pos + take]);
        pos += take;
        loop {
            let before = buf.len();
            let (n, need_more) = match dec.decode(&mut buf) {
                Err(e) => {
                    ensure!(dec.decode(&mut buf) == Err(e), "error not sticky");
                    return Ok((events, Some(e.close_code())));
                }
                Ok((n, d)) => {
                    let need_more = match d {
                        Decoded::NeedMore => true,
                        Decoded::Data { text, payload, end } => {
                            ensure!(!payload.is_empty() || end, "empty piece that ends nothing");
                            let m = message.get_or_insert_with(|| (text, Vec::new()));
                            ensure!(m.0 == text, "text flag changed inside a message");
                            m.1.extend_from_slice(payload);
                            if end {
                                let (t, data) = message.take().unwrap_or_default();
                                events.push(WsEvent::Message(t, data));
                            }
                            false
                        }
                        Decoded::Control { opcode, payload } => {
                            ensure!(
                                opcode.is_control() && payload.len() <= 125,
                                "bad control {opcode:?}"
                            );
                            events.push(WsEvent::Control(opcode.as_u8(), payload.to_vec()));
                            false
                        }
                    };
                    (n, need_more)
                }
            };
            ensure!(n <= before, "consumed {n} of {before} bytes");
            buf.drain(..n);
            if need_more && n == 0 {
                break;
            }
            ensure!(n > 0 || !need_more, "progress without consuming");
        }
        if buf.len() == cap {
            return Err(format!("decoder needs more than a full buffer of {cap} bytes"));
        }
        if arrived == stream.len() && pos == stream.len() {
            return Ok((events, None));
        }
        if pos == arrived {
            arrived = arrived
                .saturating_add(pieces.next().copied().unwrap_or(usize::MAX).max(1))
                .min(stream.len());
        }
    }
}

/// One frame as the reference parser reads it.
struct RefFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
    mask: [u8; 4],
    bytes: std::ops::Range<usize>,
}

/// Reference decoder (RFC 6455 §5), written over the whole stream: frames,
/// the events they make, and the close code of the first error, found at
/// the earliest byte that shows it.
fn ref_ws(s: &[u8], max: u64) -> (Vec<WsEvent>, Option<u16>, Vec<RefFrame>) {
    let mut events = Vec::new();
    let mut frames = Vec::new();
    let mut message: Option<(bool, Vec<u8>)> = None;
    let mut p = 0;
    macro_rules! fail {
        ($code:expr) => {
            return (events, Some($code), frames)
        };
    }
    macro_rules! need {
        ($n:expr) => {
            if s.len() < $n {
                return (events, None, frames);
            }
        };
    }
    loop {
        need!(p + 1);
        let b0 = s[p];
        let (fin, op) = (b0 & 0x80 != 0, b0 & 0x0F);
        if b0 & 0x70 != 0 || !matches!(op, 0 | 1 | 2 | 8 | 9 | 10) {
            fail!(1002);
        }
        let control = op >= 8;
        if (control && !fin) || (op == 0 && message.is_none()) || ((op == 1 || op == 2) && message.is_some())
        {
            fail!(1002);
        }
        need!(p + 2);
        let b1 = s[p + 1];
        let len7 = u64::from(b1 & 0x7F);
        if b1 & 0x80 == 0 || (control && len7 > 125) {
            fail!(1002);
        }
        let (len, ext) = match len7 {
            126 => {
                need!(p + 4);
                let v = u64::from(s[p + 2]) << 8 | u64::from(s[p + 3]);
                if v < 126 {
                    fail!(1002);
                }
                (v, 2)
            }
            127 => {
                need!(p + 10);
                let v = s[p + 2..p + 10].iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
                if v >= 1 << 63 || v <= 0xFFFF {
                    fail!(1002);
                }
                (v, 8)
            }
            n => (n, 0),
        };
        if !control {
            let so_far = if op == 0 {
                message.as_ref().map_or(0, |m| m.1.len() as u64)
            } else {
                0
            };
            if so_far.checked_add(len).is_none_or(|t| t > max) {
                fail!(1009);
            }
        }
        let head = 2 + ext + 4;
        need!(p + head);
        let mask = [s[p + 2 + ext], s[p + 3 + ext], s[p + 4 + ext], s[p + 5 + ext]];
        let start = p + head;
        let avail = ((s.len() - start) as u64).min(len) as usize;
        let payload: Vec<u8> = s[start..start + avail]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        if control {
            if (avail as u64) < len {
                return (events, None, frames);
            }
            frames.push(RefFrame {
                fin,
                opcode: op,
                payload: payload.clone(),
                mask,
                bytes: p..start + avail,
            });
            if op == 8 {
                match payload.len() {
                    0 => {}
                    1 => fail!(1002),
                    _ => {
                        if !valid_close_code(u16::from_be_bytes([payload[0], payload[1]])) {
                            fail!(1002);
                        }
                        if std::str::from_utf8(&payload[2..]).is_err() {
                            fail!(1007);
                        }
                    }
                }
                events.push(WsEvent::Control(op, payload));
                return (events, None, frames);
            }
            events.push(WsEvent::Control(op, payload));
            p = start + avail;
            continue;
        }
        if op != 0 {
            message = Some((op == 1, Vec::new()));
        }
        let Some(m) = message.as_mut() else { fail!(1002) };
        m.1.extend_from_slice(&payload);
        if m.0 {
            if let Err(e) = std::str::from_utf8(&m.1) {
                if e.error_len().is_some() {
                    fail!(1007);
                }
            }
        }
        if (avail as u64) < len {
            return (events, None, frames);
        }
        frames.push(RefFrame {
            fin,
            opcode: op,
            payload,
            mask,
            bytes: p..start + avail,
        });
        p = start + avail;
        if fin {
            let (text, data) = message.take().unwrap_or_default();
            if text && std::str::from_utf8(&data).is_err() {
                fail!(1007);
            }
            events.push(WsEvent::Message(text, data));
        }
    }
}

/// Fuzz target `ws_frame`: byte 0 picks the message limit (low 2 bits) and
/// the read buffer size, byte 1 the number of arrival piece lengths that
/// follow (low 3 bits); the rest is what the client sends.
pub fn ws_frame(data: &[u8]) -> Check {
    let [cfg, split, rest @ ..] = data else {
        return Ok(());
    };
    let max = [16u64, 125, 1000, 1 << 20][usize::from(cfg & 3)];
    let cap = MIN_BUFFER + usize::from(cfg >> 2) * 5;
    let count = usize::from(split & 7).min(rest.len());
    let pieces: Vec<usize> = rest[..count].iter().map(|&b| usize::from(b)).collect();
    let stream = &rest[count..];

    let (want_events, want_err, frames) = ref_ws(stream, max);
    let whole = ws_run(stream, &[stream.len()], stream.len().max(MIN_BUFFER) + 1, max)?;
    ensure!(
        whole == (want_events.clone(), want_err),
        "decoder: {whole:?}, reference: {:?}",
        (want_events, want_err)
    );
    let split_run = ws_run(stream, &pieces, cap, max)?;
    ensure!(
        split_run == whole,
        "buffer {cap}, pieces {pieces:?}: {split_run:?}, at once: {whole:?}"
    );

    // Every frame the reference read is the encoder's minimal encoding.
    for f in &frames {
        let Some(op) = Opcode::from_u8(f.opcode) else {
            continue;
        };
        let again = encode_frame(f.fin, op, &f.payload, Some(f.mask));
        ensure!(
            again == stream[f.bytes.clone()],
            "encode_frame differs for {op:?} of {} bytes",
            f.payload.len()
        );
    }

    // Header encoding of an arbitrary length (below 2^63).
    let len = stream.iter().take(8).fold(0u64, |a, &b| a << 8 | u64::from(b)) >> (cfg & 63) >> 1;
    let mut head = [0u8; 10];
    let n = encode_header(true, Opcode::Binary, len, &mut head);
    let expect = if len < 126 {
        2
    } else if len <= 0xFFFF {
        4
    } else {
        10
    };
    ensure!(n == expect, "header of {n} bytes for length {len}");
    let decoded_len = match n {
        2 => u64::from(head[1]),
        4 => u64::from(head[2]) << 8 | u64::from(head[3]),
        _ => head[2..10].iter().fold(0u64, |a, &b| a << 8 | u64::from(b)),
    };
    ensure!(
        decoded_len == len && head[0] == 0x82,
        "header {:?} for length {len}",
        &head[..n]
    );

    // Close payloads and handshake keys.
    let code = u16::from(*cfg) << 8 | u16::from(*split);
    let reason = String::from_utf8_lossy(stream);
    let payload = close_payload(code, &reason);
    ensure!(payload.len() <= 125, "close payload of {} bytes", payload.len());
    match parse_close(&payload) {
        Ok(Some((c, r))) => ensure!(
            c == code && reason.starts_with(r) && (r.len() == reason.len() || r.len() + 4 > 123),
            "close payload read back as {c} {r:?}"
        ),
        other => ensure!(!valid_close_code(code), "close {code} read back as {other:?}"),
    }
    if let Some(key) = accept_key(stream) {
        let raw = dockermand::crypto::base64::decode(key.as_bytes());
        ensure!(
            key.len() == 28 && raw.is_some_and(|r| r.len() == 20),
            "accept key {key:?}"
        );
        let trimmed = stream.trim_ascii_start().trim_ascii_end();
        ensure!(
            dockermand::crypto::base64::decode(trimmed).is_some_and(|n| n.len() == 16),
            "accept key for a key that is not 16 bytes of base64"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// auth_header

use dockermand::access::auth::{parse_authorization, parse_cookie, parse_subprotocol, PasswordHash, COOKIE};
use dockermand::crypto::sha256::{from_hex, hex};

/// Fuzz target `auth_header`: byte 0 picks the parser (mod 7), the rest is
/// its input: 0 `Authorization`, 1 `Cookie`, 2 `Sec-WebSocket-Protocol`,
/// 3 base64, 4 a password hash, 5 hex, 6 the digests (compared with the
/// RustCrypto crates by the fuzz target only, see `digests.rs`).
pub fn auth_header(data: &[u8]) -> Check {
    let Some((&which, v)) = data.split_first() else {
        return Ok(());
    };
    match which % 7 {
        0 => {
            let Some(token) = parse_authorization(v) else {
                return Ok(());
            };
            ensure!(
                !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()),
                "token {token:?} is not visible ASCII"
            );
            let text = std::str::from_utf8(v).map_err(|_| "token from non-UTF-8".to_string())?;
            let (scheme, rest) = text.trim().split_once(' ').ok_or("no scheme")?;
            ensure!(
                scheme.eq_ignore_ascii_case("bearer"),
                "scheme {scheme:?} read as Bearer"
            );
            ensure!(rest.trim() == token, "token {token:?} from {text:?}");
        }
        1 => {
            let Some(value) = parse_cookie(v, COOKIE) else {
                return Ok(());
            };
            ensure!(
                !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric()),
                "cookie value {value:?}"
            );
            let text = std::str::from_utf8(v).map_err(|_| "cookie from non-UTF-8".to_string())?;
            // The first pair named exactly COOKIE with a usable value.
            let first = text.split(';').find_map(|pair| {
                let (k, val) = pair.split_once('=')?;
                let val = val.trim().trim_matches('"');
                (k.trim() == COOKIE && !val.is_empty() && val.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .then_some(val)
            });
            ensure!(
                first == Some(value.as_str()),
                "cookie {value:?}, reference {first:?}"
            );
        }
        2 => {
            let Some((token, proto)) = parse_subprotocol(v) else {
                return Ok(());
            };
            ensure!(!token.is_empty(), "empty subprotocol token");
            ensure!(
                proto == format!("dockermand.token.{token}"),
                "echoes {proto:?} for {token:?}"
            );
            let text = std::str::from_utf8(v).map_err(|_| "subprotocol from non-UTF-8".to_string())?;
            ensure!(
                text.split(',').any(|p| p.trim() == proto),
                "echoes {proto:?}, not offered"
            );
        }
        3 => {
            if let Some(bytes) = dockermand::crypto::base64::decode(v) {
                let again = dockermand::crypto::base64::encode(&bytes);
                ensure!(
                    again.as_bytes() == v,
                    "{} decodes, but encodes back as {again:?}",
                    show(v)
                );
            }
            let enc = dockermand::crypto::base64::encode(v);
            ensure!(
                enc.len() == v.len().div_ceil(3) * 4,
                "encoded length {}",
                enc.len()
            );
            ensure!(
                dockermand::crypto::base64::decode(enc.as_bytes()).as_deref() == Some(v),
                "round trip of {}",
                show(v)
            );
        }
        4 => {
            let text = String::from_utf8_lossy(v);
            let Ok(h) = PasswordHash::parse(&text) else {
                return Ok(());
            };
            ensure!(
                (1..=dockermand::access::auth::MAX_PASSWORD_ITERATIONS).contains(&h.iterations),
                "iterations {}",
                h.iterations
            );
            let canonical = format!(
                "pbkdf2-sha256${}${}${}",
                h.iterations,
                dockermand::crypto::base64::encode(&h.salt),
                dockermand::crypto::base64::encode(&h.hash)
            );
            ensure!(
                PasswordHash::parse(&canonical).as_ref() == Ok(&h),
                "{canonical:?} parses differently"
            );
        }
        5 => {
            let text = String::from_utf8_lossy(v);
            if let Some(bytes) = from_hex(&text) {
                ensure!(
                    hex(&bytes) == text.to_ascii_lowercase(),
                    "hex {text:?} read as {bytes:?}"
                );
            }
            ensure!(from_hex(&hex(v)).as_deref() == Some(v), "hex round trip");
            if let Some(d) = dockermand::access::auth::token_digest_from_hex(&text) {
                ensure!(
                    text.len() == 64 && hex(&d) == text.to_ascii_lowercase(),
                    "digest {text:?}"
                );
            }
        }
        // 6: the digests, compared in fuzz/src/digests.rs.
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// cert_names

#[cfg(feature = "tls")]
use dockermand::tls::cert_names::{cert_names as read_cert_names, MAX_NAMES};

/// Fuzz target `cert_names`: the input is a client certificate's DER. What
/// is accepted is one DER SEQUENCE filling the input exactly, so neither
/// cutting its last byte nor adding one is accepted too. Its names are at
/// most `MAX_NAMES` of each kind, none empty or able to corrupt a log line,
/// and each is, in one of the encodings a certificate may give it, the whole
/// contents of some element of the input.
#[cfg(feature = "tls")]
pub fn cert_names(data: &[u8]) -> Check {
    let Ok(names) = read_cert_names(data) else {
        return Ok(());
    };
    ensure!(
        is_one_der_sequence(data),
        "accepted input that is not one DER SEQUENCE"
    );
    ensure!(
        names.common_names.len() <= MAX_NAMES && names.alt_names.len() <= MAX_NAMES,
        "{} common names and {} alt names",
        names.common_names.len(),
        names.alt_names.len()
    );
    for name in names.common_names.iter().chain(&names.alt_names) {
        ensure!(!name.is_empty(), "an empty name");
        ensure!(
            !name.chars().any(corrupts_log_line),
            "{name:?} can corrupt a log line"
        );
        ensure!(
            is_element_contents(data, name),
            "{name:?} is no element's contents in the input"
        );
    }
    if let Some((_, cut)) = data.split_last() {
        ensure!(read_cert_names(cut).is_err(), "accepted without its last byte");
    }
    ensure!(
        read_cert_names(&[data, &[0]].concat()).is_err(),
        "accepted with a byte added"
    );
    Ok(())
}

/// Whether `data` is a SEQUENCE whose definite, shortest-form length ends
/// exactly at the end of `data`.
fn is_one_der_sequence(data: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = data else {
        return false;
    };
    if *first < 0x80 {
        return rest.len() == usize::from(*first);
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || rest.len() < count || rest[0] == 0 {
        return false;
    }
    let (len_bytes, contents) = rest.split_at(count);
    let len = len_bytes
        .iter()
        .try_fold(0usize, |acc, &b| acc.checked_mul(256).map(|n| n + usize::from(b)));
    len.is_some_and(|len| len >= 0x80 && contents.len() == len)
}

/// C0 and C1 controls, DEL, U+2028 and U+2029, and the bidi embeddings,
/// overrides and isolates.
fn corrupts_log_line(c: char) -> bool {
    matches!(
        c,
        '\0'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// Whether some encoding a certificate may give `name` (UTF-8 or ASCII,
/// Latin-1, UCS-2, UCS-4, or the octets of an IP address written as text)
/// follows its own DER length somewhere in `data`.
fn is_element_contents(data: &[u8], name: &str) -> bool {
    let latin1: Option<Vec<u8>> = name.chars().map(|c| u8::try_from(c).ok()).collect();
    let ucs2: Option<Vec<u8>> = name
        .chars()
        .map(|c| u16::try_from(u32::from(c)).ok().map(u16::to_be_bytes))
        .collect::<Option<Vec<_>>>()
        .map(|units| units.concat());
    let ucs4: Vec<u8> = name.chars().flat_map(|c| u32::from(c).to_be_bytes()).collect();
    let ip = name.parse::<std::net::IpAddr>().ok().map(|ip| match ip {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    });
    [Some(name.as_bytes().to_vec()), latin1, ucs2, Some(ucs4), ip]
        .into_iter()
        .flatten()
        .any(|contents| {
            let element = [der_length(contents.len()), contents].concat();
            data.windows(element.len()).any(|w| w == element)
        })
}

fn der_length(len: usize) -> Vec<u8> {
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => vec![short],
        _ => {
            let bytes = len.to_be_bytes();
            let significant = &bytes[bytes.iter().take_while(|&&b| b == 0).count()..];
            [&[0x80 | significant.len() as u8][..], significant].concat()
        }
    }
}

// ---------------------------------------------------------------------------
// tls_front

#[cfg(feature = "tls")]
use dockermand::tls::front::{Front, Step};

/// Fuzz target `tls_front`: the input is what a client sends a TLS port,
/// cut into pieces (a piece ends after each `0xff` byte, so the fuzzer
/// picks the record and read boundaries too). Whatever it is, the front
/// answers without panicking and without ever holding the loop (each drive
/// returns), hands nothing to its connection (no handshake completes
/// without the client reading the server's reply), sends at most a
/// handshake flight's worth back, and closes once the client ends.
#[cfg(feature = "tls")]
pub fn tls_front(data: &[u8]) -> Check {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use dockermand::net::socket::{Side, Stream};

    let pair = || -> Result<(UnixStream, mio::net::UnixStream), String> {
        let (a, b) = mio::net::UnixStream::pair().map_err(|e| e.to_string())?;
        let a = UnixStream::from(std::os::fd::OwnedFd::from(a));
        a.set_nonblocking(true).map_err(|e| e.to_string())?;
        Ok((a, b))
    };
    let (mut client, tcp) = pair()?;
    let (mut conn, inner) = pair()?;
    let tls = rustls::ServerConnection::new(tls_config()).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut front = Front::new(
        Side::new(Stream::Unix(tcp)),
        Side::new(Stream::Unix(inner)),
        tls,
        deadline,
    );
    let mut scratch = vec![0; 32 * 1024];
    let mut closed = false;
    let mut drive = |front: &mut Front| -> Result<bool, String> {
        for side in [&mut front.tcp, &mut front.inner] {
            side.readable = true;
            side.writable = true;
        }
        // Each drive either waits, closes, or hands out one handshake to
        // process; a handshake cannot be processed forever.
        for _ in 0..64 {
            match front.drive(&mut scratch) {
                Step::Wait => return Ok(false),
                Step::Again => {}
                Step::Close => return Ok(true),
                Step::Established(_) => return Err("a handshake completed".into()),
                Step::Process(mut tls) => {
                    let processed = tls.process_new_packets().map(drop);
                    if let Step::Close = front.resume(tls, processed) {
                        return Ok(true);
                    }
                }
            }
        }
        Err("the front kept asking for its handshake to be processed".into())
    };
    for piece in data.split_inclusive(|&b| b == 0xff) {
        if client.write_all(piece).is_err() || drive(&mut front)? {
            closed = true;
            break;
        }
    }
    if !closed {
        let _ = client.shutdown(std::net::Shutdown::Write);
        closed = drive(&mut front)?;
    }
    ensure!(closed, "still open after the client ended its side");
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer);
    ensure!(answer.len() <= 16 * 1024, "{} bytes sent back", answer.len());
    let mut handed = [0; 1];
    ensure!(
        matches!(conn.read(&mut handed), Ok(0) | Err(_)),
        "plaintext reached the connection"
    );
    Ok(())
}

/// The server side of the test identities in `tests/tls`, loaded once.
#[cfg(feature = "tls")]
fn tls_config() -> std::sync::Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<std::sync::Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("dockermand-fuzz-tls-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            let file = |name: &str, bytes: &[u8]| {
                let path = dir.join(name);
                std::fs::write(&path, bytes).expect("writing a test certificate");
                Some(path)
            };
            let settings = dockermand::config::TlsSettings {
                cert: file("server.pem", include_bytes!("../../tests/tls/server.pem")),
                key: file("server.key", include_bytes!("../../tests/tls/server.key")),
                client_ca: file("ca.pem", include_bytes!("../../tests/tls/ca.pem")),
                ..Config::default().tls
            };
            let config = dockermand::tls::keys::server_config(&settings).expect("the test certificates load");
            let _ = std::fs::remove_dir_all(&dir);
            config
        })
        .clone()
}

// ---------------------------------------------------------------------------
// inflate_segment

#[path = "../../src/ui/gzip_segments.rs"]
mod gzip_segments;

use dockermand::ui::inflate::{self as inflater, InflateError};
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// The output buffer the gateway decodes into.
const SEGMENT_BUFFER: usize = 32 * 1024;

/// miniz_oxide's reading of a raw deflate stream, all input given: its
/// status, the bytes it consumed and its output (at most twice the
/// buffer).
fn reference_inflate(input: &[u8]) -> (TINFLStatus, usize, Vec<u8>) {
    let mut out = vec![0u8; 2 * SEGMENT_BUFFER];
    let mut state = DecompressorOxide::new();
    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let (status, used, written) = decompress(&mut state, input, &mut out, 0, flags);
    out.truncate(written);
    (status, used, out)
}

/// Fuzz target `inflate_segment`: byte 0 picks the case.
///
/// Even: the rest is a segment, decoded into a 32 KiB buffer and held to
/// miniz_oxide's reading of the same bits. Both take the same codes; ours
/// also takes a stream that stops after a non-final block ending on a byte
/// boundary (a full flush), and refuses distances before the start (a
/// fresh miniz_oxide does too), bytes after the final block and output
/// beyond the buffer. A buffer one byte short of the output must fail with
/// `OutputFull`, one exactly as long must not.
///
/// Odd: the rest, repeated `byte 0 >> 1` more times (up to 128 KiB), is
/// compressed by `gzip_segments` as the build does, and every segment must
/// decode on its own to its part of the input.
pub fn inflate_segment(data: &[u8]) -> Check {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(());
    };
    if mode & 1 == 1 {
        return inflate_round_trip(rest, usize::from(mode >> 1) + 1);
    }
    let mut buf = vec![0u8; SEGMENT_BUFFER];
    let ours = inflater::inflate_segment(rest, &mut buf);
    let (status, used, reference) = reference_inflate(rest);
    match ours {
        Ok(n) => {
            ensure!(n <= SEGMENT_BUFFER, "wrote {n} bytes");
            ensure!(
                reference.len() == n && reference[..] == buf[..n],
                "decoded {n} bytes, miniz_oxide {} ({status:?})",
                reference.len()
            );
            // Either a final block ended it, or a block on a byte boundary.
            let ok_reference = match status {
                TINFLStatus::Done => used == rest.len(),
                TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => true,
                _ => false,
            };
            ensure!(
                ok_reference,
                "accepted, miniz_oxide: {status:?} after {used} of {}",
                rest.len()
            );
            if n > 0 {
                let short = inflater::inflate_segment(rest, &mut buf[..n - 1]);
                ensure!(
                    short == Err(InflateError::OutputFull),
                    "{n} bytes into {}: {short:?}",
                    n - 1
                );
            }
            let exact = inflater::inflate_segment(rest, &mut buf[..n]);
            ensure!(exact == Ok(n), "{n} bytes into as many: {exact:?}");
        }
        Err(e) => {
            let reference_whole = status == TINFLStatus::Done && used == rest.len();
            let fits = reference.len() <= SEGMENT_BUFFER;
            ensure!(
                !(reference_whole && fits),
                "refused ({e:?}) what miniz_oxide decodes whole to {} bytes",
                reference.len()
            );
            if e == InflateError::OutputFull {
                ensure!(
                    reference.len() > SEGMENT_BUFFER || status == TINFLStatus::HasMoreOutput,
                    "OutputFull, miniz_oxide: {} bytes ({status:?})",
                    reference.len()
                );
            }
        }
    }
    Ok(())
}

fn inflate_round_trip(unit: &[u8], times: usize) -> Check {
    let times = times.min((128 * 1024) / unit.len().max(1)).max(1);
    let input = unit.repeat(times);
    let (member, segments) = gzip_segments::gzip_segments(&input);
    let mut buf = vec![0u8; SEGMENT_BUFFER];
    let mut at = 0;
    for (k, &(start, end, len)) in segments.iter().enumerate() {
        let got = inflater::inflate_segment(&member[start..end], &mut buf);
        ensure!(
            got == Ok(len),
            "segment {k} of {}: {got:?}, expected {len}",
            input.len()
        );
        ensure!(buf[..len] == input[at..at + len], "segment {k} differs");
        at += len;
    }
    ensure!(at == input.len(), "segments make {at} of {} bytes", input.len());
    Ok(())
}

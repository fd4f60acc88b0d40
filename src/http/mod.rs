//! Small pieces of HTTP/1.1 syntax shared by the request and response parsers.

pub mod chunked;
pub mod reply;
pub mod request;
pub mod response;

use std::mem::MaybeUninit;

/// The most headers a head may have, whatever the configuration says.
pub const MAX_HEADERS: usize = 1000;

/// Room for `MAX_HEADERS` parsed headers, left uninitialised: a head is
/// parsed into it on the stack without allocating or zeroing anything.
pub type HeaderSlots<'b> = [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS];

pub fn header_slots<'b>() -> HeaderSlots<'b> {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The head does not fit in the configured limit.
    TooLarge,
    TooManyHeaders,
    /// An `Expect` other than `100-continue`.
    Expectation,
    Bad(&'static str),
}

impl HeadError {
    pub fn status(self) -> u16 {
        match self {
            HeadError::TooLarge | HeadError::TooManyHeaders => 431,
            HeadError::Expectation => 417,
            HeadError::Bad(_) => 400,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            HeadError::TooLarge => "request head too large",
            HeadError::TooManyHeaders => "too many headers",
            HeadError::Expectation => "unsupported expectation",
            HeadError::Bad(why) => why,
        }
    }
}

/// Looks for the end of a head in `buf` while rejecting the line-ending
/// and folding tricks that parsers disagree on (bare LF, bare CR, NUL,
/// obs-fold, leading whitespace), in one pass. The first `scanned` bytes
/// passed an earlier call: only the new bytes (and the three before them,
/// which the end and a CR's pairing may span) are looked at again.
/// `Ok(Some(len))` is the length of the head through its empty line,
/// `Ok(None)` that it has not ended yet and may still fit in `max` bytes.
pub fn scan_head(buf: &[u8], scanned: usize, max: usize) -> Result<Option<usize>, HeadError> {
    let window = &buf[..buf.len().min(max)];
    if scanned == 0 && matches!(window.first(), Some(b'\r' | b'\n' | b' ' | b'\t')) {
        return Err(HeadError::Bad("head must not start with whitespace"));
    }
    let start = scanned.saturating_sub(3).min(window.len());
    for (i, &b) in window.iter().enumerate().skip(start) {
        match b {
            // Most bytes are printable: one comparison lets them pass.
            b'!'.. => {}
            0 => return Err(HeadError::Bad("NUL byte in head")),
            b'\n' if i == 0 || window[i - 1] != b'\r' => return Err(HeadError::Bad("bare LF in head")),
            b'\n' if i >= 3 && &window[i - 3..i] == b"\r\n\r" => return Ok(Some(i + 1)),
            b'\r' if window.get(i + 1).is_some_and(|&n| n != b'\n') => {
                return Err(HeadError::Bad("bare CR in head"))
            }
            b' ' | b'\t' if i > 0 && window[i - 1] == b'\n' => {
                return Err(HeadError::Bad("obsolete line folding"))
            }
            _ => {}
        }
    }
    if buf.len() >= max {
        return Err(HeadError::TooLarge);
    }
    Ok(None)
}

pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Lower-cased, trimmed, non-empty tokens of a `Connection` header value.
pub fn connection_tokens(value: &[u8]) -> Vec<String> {
    value
        .split(|&b| b == b',')
        .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1).
/// `Transfer-Encoding` is kept: chunked bodies are relayed verbatim.
pub fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 6] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ];
    HOP.iter().any(|h| eq_ignore_case(h, name))
}

/// A header list as `(name, value)` pairs, in order.
pub type Headers = Vec<(String, Vec<u8>)>;

/// Whether a header goes on to the next hop: hop-by-hop headers, and those
/// the `Connection` header nominates, do not.
pub fn is_end_to_end(name: &str, nominated: &[String]) -> bool {
    !is_hop_by_hop(name) && !nominated.iter().any(|n| eq_ignore_case(name, n))
}

/// The end-to-end headers of a parsed head, owned.
pub fn end_to_end(headers: &[httparse::Header], nominated: &[String]) -> Headers {
    headers
        .iter()
        .filter(|h| is_end_to_end(h.name, nominated))
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

pub fn write_headers<N: AsRef<[u8]>, V: AsRef<[u8]>>(out: &mut Vec<u8>, headers: &[(N, V)]) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_ref());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_ref());
        out.extend_from_slice(b"\r\n");
    }
}

/// `1*DIGIT`, nothing else: no sign, no spaces inside, no list, no overflow.
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_respects_limit() {
        assert_eq!(scan_head(b"GET / HTTP/1.1\r\n\r\nbody", 0, 100), Ok(Some(18)));
        assert_eq!(
            scan_head(b"GET / HTTP/1.1\r\n\r\n", 0, 17),
            Err(HeadError::TooLarge)
        );
        assert_eq!(scan_head(b"GET / HTTP/1.1\r\n", 0, 100), Ok(None));
    }

    /// A head that arrives a byte at a time is found, and refused, exactly
    /// where a scan of the whole of it would find or refuse it.
    #[test]
    fn scanning_in_pieces_agrees_with_one_scan() {
        let cases: [&[u8]; 6] = [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: \0\r\n\r\n",
            b"\r\nGET / HTTP/1.1\r\n\r\n",
        ];
        for whole in cases {
            let once = scan_head(whole, 0, 64);
            let mut scanned = 0;
            let mut pieces = Ok(None);
            for end in 1..=whole.len() {
                pieces = scan_head(&whole[..end], scanned, 64);
                if !matches!(pieces, Ok(None)) {
                    break;
                }
                scanned = end;
            }
            assert_eq!(pieces, once, "{:?}", String::from_utf8_lossy(whole));
        }
    }

    #[test]
    fn content_length() {
        assert_eq!(parse_content_length(b"0042"), Some(42));
        assert_eq!(
            parse_content_length(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for bad in [&b""[..], b"+1", b"-1", b"1 2", b"1,1", b"99999999999999999999"] {
            assert_eq!(parse_content_length(bad), None);
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            connection_tokens(b" Upgrade ,,keep-Alive"),
            ["upgrade", "keep-alive"]
        );
    }
}

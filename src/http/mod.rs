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

/// Length of the head (through the empty line) if it ends within `max` bytes.
pub fn find_head_end(buf: &[u8], max: usize) -> Option<usize> {
    find_head_end_from(buf, 0, max)
}

/// `find_head_end` for a buffer whose first `scanned` bytes were searched
/// before: only the new bytes (and the three before them) are looked at.
pub fn find_head_end_from(buf: &[u8], scanned: usize, max: usize) -> Option<usize> {
    let window = &buf[..buf.len().min(max)];
    let start = scanned.saturating_sub(3);
    let rest = window.get(start..)?;
    rest.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| start + i + 4)
}

/// Rejects the line-ending and folding tricks that parsers disagree on:
/// bare LF, bare CR, NUL, obs-fold and leading empty lines.
pub fn validate_line_endings(head: &[u8]) -> Result<(), HeadError> {
    validate_line_endings_from(head, 0)
}

/// `validate_line_endings` for a head whose first `checked` bytes passed
/// before (a CR at the old end is looked at again, now that its next byte
/// may be here).
pub fn validate_line_endings_from(head: &[u8], checked: usize) -> Result<(), HeadError> {
    if checked == 0 && matches!(head.first(), Some(b'\r' | b'\n' | b' ' | b'\t')) {
        return Err(HeadError::Bad("head must not start with whitespace"));
    }
    let start = checked.saturating_sub(1).min(head.len());
    for (i, &b) in head.iter().enumerate().skip(start) {
        match b {
            0 => return Err(HeadError::Bad("NUL byte in head")),
            b'\n' if i == 0 || head[i - 1] != b'\r' => return Err(HeadError::Bad("bare LF in head")),
            b'\r' if head.get(i + 1).is_some_and(|&n| n != b'\n') => {
                return Err(HeadError::Bad("bare CR in head"))
            }
            b' ' | b'\t' if i > 0 && head[i - 1] == b'\n' => {
                return Err(HeadError::Bad("obsolete line folding"))
            }
            _ => {}
        }
    }
    Ok(())
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

/// The end-to-end headers of a parsed head: hop-by-hop ones, and those the
/// `Connection` header nominates, left out.
pub fn end_to_end(headers: &[httparse::Header], nominated: &[String]) -> Headers {
    headers
        .iter()
        .filter(|h| !is_hop_by_hop(h.name) && !nominated.iter().any(|n| eq_ignore_case(h.name, n)))
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

pub fn write_headers(out: &mut Vec<u8>, headers: &[(String, Vec<u8>)]) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
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
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody", 100), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 17), None);
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

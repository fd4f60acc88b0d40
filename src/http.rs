//! Small pieces of HTTP/1.1 syntax shared by the request and response parsers.

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
    let window = &buf[..buf.len().min(max)];
    window
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// Rejects the line-ending and folding tricks that parsers disagree on:
/// bare LF, bare CR, NUL, obs-fold and leading empty lines.
pub fn validate_line_endings(head: &[u8]) -> Result<(), HeadError> {
    if matches!(head.first(), Some(b'\r' | b'\n' | b' ' | b'\t')) {
        return Err(HeadError::Bad("head must not start with whitespace"));
    }
    for (i, &b) in head.iter().enumerate() {
        match b {
            0 => return Err(HeadError::Bad("NUL byte in head")),
            b'\n' if i == 0 || head[i - 1] != b'\r' => {
                return Err(HeadError::Bad("bare LF in head"))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_respects_limit() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody", 100), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n", 17), None);
    }

    #[test]
    fn tokens() {
        assert_eq!(
            connection_tokens(b" Upgrade ,,keep-Alive"),
            ["upgrade", "keep-alive"]
        );
    }
}

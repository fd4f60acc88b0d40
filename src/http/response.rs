//! Response heads from dockerd: parsing, framing, and the head the client gets.
//!
//! Pure functions over bytes. A reply we cannot frame with certainty is an
//! upstream error (502), never a guess.

use crate::http::{
    connection_tokens, eq_ignore_case, header_slots, is_end_to_end, parse_content_length, scan_head,
    write_headers, HeadError, MAX_HEADERS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    None,
    Length(u64),
    Chunked,
    /// No framing: the body ends when dockerd closes the connection.
    UntilClose,
}

/// A reply head, borrowed from the bytes it was parsed from: it is used
/// (encoded for the client) before those bytes are reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    pub status: u16,
    pub reason: &'a str,
    pub head_len: usize,
    pub body: ResponseBody,
    /// dockerd will keep this connection open after the body.
    pub keep_alive: bool,
    /// Value of `Upgrade` on a 101.
    pub upgrade: Option<&'a [u8]>,
    /// End-to-end headers, in order, as received.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

impl ResponseHead<'_> {
    /// 1xx other than 101: forwarded, then the real response follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| eq_ignore_case(n, name))
            .map(|(_, v)| *v)
    }

    /// The head as the client gets it. `close` says the gateway will close
    /// the client connection after this response; `extra` are header lines
    /// of ours (CORS, the subprotocol we select), each ending in CRLF.
    pub fn encode_for_client(&self, close: bool, extra: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"HTTP/1.1 ");
        // A status is three digits (the parser checked 100..=599).
        out.extend_from_slice(&[
            b'0' + (self.status / 100) as u8,
            b'0' + (self.status / 10 % 10) as u8,
            b'0' + (self.status % 10) as u8,
            b' ',
        ]);
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        write_headers(&mut out, &self.headers);
        out.extend_from_slice(extra.as_bytes());
        if let Some(upgrade) = self.upgrade {
            out.extend_from_slice(b"Connection: Upgrade\r\nUpgrade: ");
            out.extend_from_slice(upgrade);
            out.extend_from_slice(b"\r\n");
        } else if close && !self.is_interim() {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// `Ok(None)` means the head is not complete yet and may still fit.
pub fn parse_response_head(
    buf: &[u8],
    max_head_bytes: usize,
    max_headers: usize,
    request_was_head: bool,
) -> Result<Option<ResponseHead<'_>>, HeadError> {
    match scan_head(buf, 0, max_head_bytes)? {
        Some(head_len) => parse_scanned_response(&buf[..head_len], max_headers, request_was_head).map(Some),
        None => Ok(None),
    }
}

/// Parses a whole head that `scan_head` found and passed: `raw` ends with
/// its empty line.
pub fn parse_scanned_response(
    raw: &[u8],
    max_headers: usize,
    request_was_head: bool,
) -> Result<ResponseHead<'_>, HeadError> {
    let head_len = raw.len();
    let mut slots = header_slots();
    let mut resp = httparse::Response::new(&mut []);
    let slots = &mut slots[..max_headers.min(MAX_HEADERS)];
    match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, raw, slots) {
        Ok(httparse::Status::Complete(n)) if n == head_len => {}
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        _ => return Err(HeadError::Bad("malformed response head")),
    }
    let status = resp.code.unwrap_or(0);
    if !(100..=599).contains(&status) {
        return Err(HeadError::Bad("invalid response status"));
    }
    let minor_version = resp.version.unwrap_or(1);

    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut close = minor_version == 0;
    let mut nominated: Vec<String> = Vec::new();
    let mut upgrade = None;
    for h in resp.headers.iter() {
        if eq_ignore_case(h.name, "content-length") {
            let n =
                parse_content_length(h.value).ok_or(HeadError::Bad("invalid Content-Length in response"))?;
            if content_length.is_some_and(|c| c != n) {
                return Err(HeadError::Bad("conflicting Content-Length in response"));
            }
            content_length = Some(n);
        } else if eq_ignore_case(h.name, "transfer-encoding") {
            if chunked || !h.value.eq_ignore_ascii_case(b"chunked") {
                return Err(HeadError::Bad("unsupported Transfer-Encoding in response"));
            }
            chunked = true;
        } else if eq_ignore_case(h.name, "connection") {
            for token in connection_tokens(h.value) {
                match token.as_str() {
                    "close" => close = true,
                    "keep-alive" => close = false,
                    "upgrade" => {}
                    _ => nominated.push(token),
                }
            }
        } else if eq_ignore_case(h.name, "upgrade") {
            upgrade = Some(h.value);
        }
    }
    if chunked && content_length.is_some() {
        return Err(HeadError::Bad(
            "both Content-Length and Transfer-Encoding in response",
        ));
    }

    let body = if request_was_head || (100..200).contains(&status) || status == 204 || status == 304 {
        ResponseBody::None
    } else if chunked {
        ResponseBody::Chunked
    } else {
        match content_length {
            Some(0) => ResponseBody::None,
            Some(n) => ResponseBody::Length(n),
            None => ResponseBody::UntilClose,
        }
    };
    let headers = resp
        .headers
        .iter()
        .filter(|h| is_end_to_end(h.name, &nominated))
        .map(|h| (h.name, h.value))
        .collect();
    Ok(ResponseHead {
        status,
        reason: resp.reason.unwrap_or(""),
        head_len,
        keep_alive: !close && body != ResponseBody::UntilClose,
        body,
        upgrade: if status == 101 { upgrade } else { None },
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], head: bool) -> Result<Option<ResponseHead<'_>>, HeadError> {
        parse_response_head(raw, 16384, 100, head)
    }

    #[test]
    fn json_reply() {
        let raw = b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        let r = parse(raw, false).unwrap().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, ResponseBody::Length(2));
        assert!(r.keep_alive);
        assert_eq!(r.head_len, raw.len() - 2);
    }

    #[test]
    fn framing_rules() {
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(r.body, ResponseBody::Chunked);
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(r.body, ResponseBody::None);
        let r = parse(b"HTTP/1.1 204 No Content\r\n\r\n", false).unwrap().unwrap();
        assert_eq!(r.body, ResponseBody::None);
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.body, ResponseBody::UntilClose);
        assert!(!r.keep_alive);
        assert!(parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            false
        )
        .is_err());
        assert!(parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        )
        .is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false).is_err());
        assert!(parse(b"HTTP/1.1 999 Nope\r\n\r\n", false).is_err());
        assert!(parse(b"garbage\r\n\r\n", false).is_err());
    }

    #[test]
    fn upgrade_reply_keeps_protocol() {
        let raw = b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
        let r = parse(raw, false).unwrap().unwrap();
        assert_eq!(r.upgrade, Some(&b"tcp"[..]));
        let out = String::from_utf8(r.encode_for_client(false, "")).unwrap();
        assert_eq!(out, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
    }

    #[test]
    fn client_head_drops_hop_by_hop() {
        let raw = b"HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Docker-Container-Path-Stat: e30=\r\n\r\n";
        let r = parse(raw, true).unwrap().unwrap();
        let out = String::from_utf8(r.encode_for_client(true, "")).unwrap();
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nX-Docker-Container-Path-Stat: e30=\r\nConnection: close\r\n\r\n"
        );
    }
}

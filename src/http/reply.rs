//! Replies dockermand makes itself, encoded whole: Docker-style JSON errors,
//! our endpoints' JSON, pages and metrics.

use serde_json::json;

/// `value` as compact JSON text, the same as its `to_string()`. Value's
/// `Display` carries a pretty printer too, for `{:#}`; serializing it
/// straight into a string is 2 KB smaller.
pub fn json_text(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[derive(Debug)]
pub struct LocalReply {
    pub status: u16,
    content_type: &'static str,
    body: String,
    /// Extra header lines, each ending in CRLF.
    pub headers: String,
}

impl LocalReply {
    pub fn json(status: u16, value: serde_json::Value) -> LocalReply {
        LocalReply {
            status,
            content_type: "application/json",
            body: json_text(&value),
            headers: String::new(),
        }
    }

    /// Docker's error form: `{"message": ...}`.
    pub fn error(status: u16, message: &str) -> LocalReply {
        LocalReply::json(status, json!({ "message": message }))
    }

    /// A body of any other type, as it is.
    pub fn body(status: u16, content_type: &'static str, body: String) -> LocalReply {
        LocalReply {
            status,
            content_type,
            body,
            headers: String::new(),
        }
    }

    /// Sends a browser to `location` (a path of ours).
    pub fn redirect(location: &str) -> LocalReply {
        LocalReply::body(303, "text/plain; charset=utf-8", String::new())
            .with_headers(&format!("Location: {location}\r\n"))
    }

    pub fn with_headers(mut self, lines: &str) -> LocalReply {
        self.headers.push_str(lines);
        self
    }

    /// A reply to HEAD keeps its headers and drops the body.
    pub fn encode(&self, close: bool, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}{}Server: dockermand\r\n\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            self.headers,
            if close { "Connection: close\r\n" } else { "" },
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_is_docker_style() {
        let out = String::from_utf8(LocalReply::error(400, "bad \"thing\"").encode(true, false)).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(out.contains("Connection: close\r\n"));
        assert!(out.ends_with("\r\n\r\n{\"message\":\"bad \\\"thing\\\"\"}"));
    }
}

//! Replies dockermand makes itself: its own endpoints under `/_dockermand/`
//! (a prefix no Docker API route can take) and Docker-style error replies.

use std::time::Instant;

use serde_json::json;

use crate::config::Config;
use crate::pool::Resources;
use crate::request::RequestHead;

pub const PREFIX: &str = "/_dockermand/";

/// Counters the status endpoint reports.
pub struct Stats {
    pub started: Instant,
    pub connections_active: usize,
    pub connections_total: u64,
    pub requests: u64,
    pub rejected: u64,
    pub upstream_errors: u64,
}

impl Stats {
    pub fn new(now: Instant) -> Stats {
        Stats {
            started: now,
            connections_active: 0,
            connections_total: 0,
            requests: 0,
            rejected: 0,
            upstream_errors: 0,
        }
    }
}

pub struct LocalReply {
    pub status: u16,
    body: String,
}

impl LocalReply {
    pub fn encode(&self, close: bool) -> Vec<u8> {
        encode(self.status, &self.body, close)
    }
}

pub fn is_local(path: &str) -> bool {
    path.starts_with(PREFIX) || path == "/_dockermand"
}

pub fn answer(
    head: &RequestHead,
    stats: &Stats,
    res: &Resources,
    cfg: &Config,
    now: Instant,
) -> LocalReply {
    let route = head.path().strip_prefix(PREFIX).unwrap_or("");
    match (head.method.as_str(), route) {
        ("GET" | "HEAD", "status") => LocalReply {
            status: 200,
            body: status_json(stats, res, cfg, now),
        },
        (_, "status") => error(405, "method not allowed"),
        _ => error(404, "no such dockermand endpoint"),
    }
}

fn status_json(stats: &Stats, res: &Resources, cfg: &Config, now: Instant) -> String {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": now.duration_since(stats.started).as_secs(),
        "upstream": cfg.upstream.to_string(),
        "connections": {
            "active": stats.connections_active,
            "total": stats.connections_total,
            "max": cfg.max_connections,
        },
        "requests": {
            "total": stats.requests,
            "rejected": stats.rejected,
            "upstream_errors": stats.upstream_errors,
        },
        "bytes": {
            "spliced": res.bytes.spliced,
            "copied": res.bytes.copied,
        },
        "buffers_in_use": res.buffers_in_use,
        "pipes_in_use": res.pipes_in_use,
        "splice": res.splice_enabled,
    })
    .to_string()
}

fn error(status: u16, message: &str) -> LocalReply {
    LocalReply {
        status,
        body: json!({ "message": message }).to_string(),
    }
}

/// A complete error reply in Docker's `{"message": ...}` form.
pub fn error_response(status: u16, message: &str, close: bool) -> Vec<u8> {
    error(status, message).encode(close)
}

fn encode(status: u16, body: &str, close: bool) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}Server: dockermand\r\n\r\n{body}",
        reason(status),
        body.len(),
        if close { "Connection: close\r\n" } else { "" },
    )
    .into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The path without dockerd's optional `/v{version:[0-9.]+}` prefix.
pub fn strip_version(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    let digits = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    if digits == 0 {
        return path;
    }
    match rest[digits..].as_bytes().first() {
        Some(b'/') => &rest[digits..],
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix() {
        assert_eq!(strip_version("/v1.47/containers/json"), "/containers/json");
        assert_eq!(strip_version("/v1/x"), "/x");
        assert_eq!(strip_version("/version"), "/version");
        assert_eq!(strip_version("/v1.47"), "/v1.47");
        assert_eq!(strip_version("/volumes"), "/volumes");
    }

    #[test]
    fn error_reply_is_docker_style() {
        let out = String::from_utf8(error_response(400, "bad \"thing\"", true)).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(out.contains("Connection: close\r\n"));
        assert!(out.ends_with("\r\n\r\n{\"message\":\"bad \\\"thing\\\"\"}"));
    }
}

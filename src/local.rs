//! dockermand's own endpoints under `/_dockermand/` (a prefix no Docker API
//! route can take): which path is which, the status and metrics figures,
//! and the ways to sign in.

use std::fmt::Write;
use std::time::Instant;

use serde_json::json;

use crate::config::Config;
use crate::http::reply::LocalReply;
use crate::net::intake::Intake;
use crate::relay::pool::Resources;
use crate::stats::{Stats, TlsFigures};

pub const PREFIX: &str = "/_dockermand/";
/// The web UI's page; a one-time ticket in its query signs a browser in.
pub const UI: &str = "/_dockermand/ui/";

/// The sizes of the authentication tables and queues, and what they cost.
pub struct AuthFigures {
    pub sessions: usize,
    /// Peers with failed logins remembered, logins queued for hashing.
    pub login_peers: usize,
    pub login_queue: usize,
    pub logins_hashed: u64,
    pub login_rounds: u64,
    pub ubus_running: usize,
    pub ubus_spawns: u64,
    /// Sessions rpcd refused that are refused without asking, and how
    /// many requests that saved a spawn.
    pub ubus_refused: usize,
    pub ubus_refused_hits: u64,
}

/// Our endpoints, by path under the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    LoginMethods,
    Login,
    /// The UI's page with a ticket: a session cookie for its principal.
    UiSignIn,
    Logout,
    Status,
    Metrics,
    WhoAmI,
    Ticket,
    Echo,
    Console(String),
    Unknown,
}

/// `None` when the path belongs to the Docker API.
pub fn endpoint(method: &str, path: &str) -> Option<Endpoint> {
    if path == "/_dockermand" {
        return Some(Endpoint::Unknown);
    }
    let rest = path.strip_prefix(PREFIX)?;
    Some(match (method, rest) {
        ("GET" | "HEAD", "login") => Endpoint::LoginMethods,
        ("GET", "ui/") => Endpoint::UiSignIn,
        ("POST", "login") => Endpoint::Login,
        ("POST", "logout") => Endpoint::Logout,
        ("GET" | "HEAD", "status") => Endpoint::Status,
        ("GET" | "HEAD", "metrics") => Endpoint::Metrics,
        ("GET", "whoami") => Endpoint::WhoAmI,
        ("POST", "ticket") => Endpoint::Ticket,
        ("GET", "echo") => Endpoint::Echo,
        ("GET", r) => match r
            .strip_prefix("containers/")
            .and_then(|r| r.strip_suffix("/console"))
        {
            Some(id) if !id.is_empty() && !id.contains('/') => Endpoint::Console(id.to_string()),
            _ => Endpoint::Unknown,
        },
        _ => Endpoint::Unknown,
    })
}

pub fn status(
    stats: &Stats,
    res: &Resources,
    intake: &Intake,
    cfg: &Config,
    auth: &AuthFigures,
    tls: &TlsFigures,
    now: Instant,
) -> LocalReply {
    LocalReply::json(
        200,
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": now.duration_since(stats.started).as_secs(),
            "upstream": cfg.upstream.to_string(),
            "connections": {
                "active": stats.connections_active.get(),
                "total": stats.connections_total,
                "max": cfg.max_connections,
                "consoles": stats.consoles.get(),
                "consoles_ending": stats.consoles_ending.get(),
                "upstream_idle": stats.upstream_idle.get(),
                "per_address_max": intake.busiest(),
                "per_address_limit": cfg.max_connections_per_address,
                "sending_first_head": intake.first_heads(),
                "evicted": intake.evicted,
                "refused_per_address": intake.refused,
                "descriptors_exhausted": stats.descriptors_exhausted,
                "refused_no_descriptor": stats.refused_no_descriptor,
            },
            "body_budget": {
                "in_use": res.body_budget.in_use(),
                "limit": res.body_budget.limit,
                "refused": res.body_budget.refused,
            },
            "requests": {
                "total": stats.requests,
                "rejected": stats.rejected,
                "upstream_errors": stats.upstream_errors,
            },
            "policy": {
                "allowed": stats.allowed,
                "denied": stats.denied,
                "dry_run": cfg.dry_run,
            },
            "bytes": {
                "spliced": res.bytes.spliced,
                "copied": res.bytes.copied,
            },
            "sessions": auth.sessions,
            "auth": {
                "login_peers": auth.login_peers,
                "login_queue": auth.login_queue,
                "logins_hashed": auth.logins_hashed,
                "login_hash_rounds": auth.login_rounds,
                "ubus_running": auth.ubus_running,
                "ubus_spawns": auth.ubus_spawns,
                "ubus_refused_cached": auth.ubus_refused,
                "ubus_refused_hits": auth.ubus_refused_hits,
            },
            "tls": {
                "fronts": tls.fronts,
                "handshaking": tls.handshaking,
                "handshakes_max": cfg.tls.max_handshakes,
                "handshakes_evicted": tls.evicted,
                "handshakes_timed_out": tls.timed_out,
                "handshakes_failed": tls.failed,
            },
            "buffers_in_use": res.buffers_in_use(),
            "pipes_in_use": res.pipes_in_use(),
            "splice": res.splice_enabled,
            "loop": stats.loop_time.json(now),
        }),
    )
}

/// The status figures as Prometheus text.
pub fn metrics(
    stats: &Stats,
    res: &Resources,
    intake: &Intake,
    auth: &AuthFigures,
    tls: &TlsFigures,
    now: Instant,
) -> LocalReply {
    let mut out = String::new();
    let gauges: [(&str, &str, u64); 21] = [
        (
            "connections_active",
            "gauge",
            stats.connections_active.get() as u64,
        ),
        ("connections_total", "counter", stats.connections_total),
        ("consoles_active", "gauge", stats.consoles.get() as u64),
        ("consoles_ending", "gauge", stats.consoles_ending.get() as u64),
        ("upstream_idle", "gauge", stats.upstream_idle.get() as u64),
        ("connections_per_address_max", "gauge", intake.busiest() as u64),
        (
            "connections_sending_first_head",
            "gauge",
            intake.first_heads() as u64,
        ),
        ("connections_evicted_total", "counter", intake.evicted),
        ("connections_refused_per_address_total", "counter", intake.refused),
        (
            "accept_descriptors_exhausted_total",
            "counter",
            stats.descriptors_exhausted,
        ),
        (
            "connections_refused_no_descriptor_total",
            "counter",
            stats.refused_no_descriptor,
        ),
        (
            "body_budget_in_use_bytes",
            "gauge",
            res.body_budget.in_use() as u64,
        ),
        ("body_budget_limit_bytes", "gauge", res.body_budget.limit as u64),
        ("body_budget_refused_total", "counter", res.body_budget.refused),
        ("requests_total", "counter", stats.requests),
        ("requests_rejected_total", "counter", stats.rejected),
        ("upstream_errors_total", "counter", stats.upstream_errors),
        ("policy_allowed_total", "counter", stats.allowed),
        ("sessions", "gauge", auth.sessions as u64),
        ("buffers_in_use", "gauge", res.buffers_in_use() as u64),
        ("pipes_in_use", "gauge", res.pipes_in_use() as u64),
    ];
    for (name, kind, value) in gauges {
        let _ = writeln!(out, "# TYPE dockermand_{name} {kind}\ndockermand_{name} {value}");
    }
    let auth_gauges: [(&str, &str, u64); 8] = [
        ("login_peers", "gauge", auth.login_peers as u64),
        ("login_queue", "gauge", auth.login_queue as u64),
        ("logins_hashed_total", "counter", auth.logins_hashed),
        ("login_hash_rounds_total", "counter", auth.login_rounds),
        ("ubus_running", "gauge", auth.ubus_running as u64),
        ("ubus_spawns_total", "counter", auth.ubus_spawns),
        ("ubus_refused_cached", "gauge", auth.ubus_refused as u64),
        ("ubus_refused_hits_total", "counter", auth.ubus_refused_hits),
    ];
    let tls_gauges: [(&str, &str, u64); 5] = [
        ("tls_fronts", "gauge", tls.fronts as u64),
        ("tls_handshaking", "gauge", tls.handshaking as u64),
        ("tls_handshakes_evicted_total", "counter", tls.evicted),
        ("tls_handshakes_timed_out_total", "counter", tls.timed_out),
        ("tls_handshakes_failed_total", "counter", tls.failed),
    ];
    for (name, kind, value) in auth_gauges.into_iter().chain(tls_gauges) {
        let _ = writeln!(out, "# TYPE dockermand_{name} {kind}\ndockermand_{name} {value}");
    }
    out.push_str("# TYPE dockermand_policy_denied_total counter\n");
    for (rule, n) in &stats.denied {
        let _ = writeln!(out, "dockermand_policy_denied_total{{rule=\"{rule}\"}} {n}");
    }
    stats.loop_time.prometheus(&mut out, now);
    LocalReply::body(200, "text/plain; version=0.0.4", out)
}

/// How a browser may sign in here, for the UI's sign-in screen.
pub fn login_methods(cfg: &Config) -> LocalReply {
    let mut methods = Vec::new();
    if !cfg.auth.users.is_empty() {
        methods.push("password");
    }
    if cfg.auth.rpcd.is_some() {
        methods.push("router");
    }
    if !cfg.auth.tokens.is_empty() {
        methods.push("token");
    }
    LocalReply::json(200, json!({ "methods": methods }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("GET", "/_dockermand/status"), Some(Endpoint::Status));
        assert_eq!(endpoint("POST", "/_dockermand/login"), Some(Endpoint::Login));
        assert_eq!(
            endpoint("GET", "/_dockermand/containers/abc/console"),
            Some(Endpoint::Console("abc".into()))
        );
        assert_eq!(
            endpoint("GET", "/_dockermand/containers/a/b/console"),
            Some(Endpoint::Unknown)
        );
        assert_eq!(endpoint("DELETE", "/_dockermand/status"), Some(Endpoint::Unknown));
        assert_eq!(endpoint("GET", "/containers/json"), None);
    }
}

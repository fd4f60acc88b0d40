//! The Docker Engine API route table (API 1.41 and later) and the path
//! normaliser that feeds it.
//!
//! dockerd decodes the path once, strips an optional `/v{version:[0-9.]+}`
//! prefix and routes with greedy name variables (`/images/{name:.*}/json`).
//! We do the same, and refuse anything two readers could split differently:
//! bad or NUL escapes, dot and empty segments, and `%2F` that would move the
//! request to another route. A path that matches no route is denied.

use std::fmt;

/// What a route does; roles grant classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Lists, inspects, version, events, stats.
    Read,
    Logs,
    /// Archive, export, image save and load.
    Files,
    /// Exec and attach.
    Exec,
    /// Create, start, stop, remove; images, networks, volumes.
    Write,
    Build,
    /// Swarm, nodes, services, secrets, configs, plugins.
    System,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::Read,
        Class::Logs,
        Class::Files,
        Class::Exec,
        Class::Write,
        Class::Build,
        Class::System,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Logs => "logs",
            Class::Files => "files",
            Class::Exec => "exec",
            Class::Write => "write",
            Class::Build => "build",
            Class::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which request bodies the policy reads, for checked roles, before
/// forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCheck {
    ContainerCreate,
    ContainerUpdate,
    Commit,
    ExecCreate,
    VolumeCreate,
    NetworkCreate,
    NetworkConnect,
    NetworkDisconnect,
    PluginPrivileges,
}

/// What else a checked role's request must satisfy, read from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    None,
    /// No body at all: before API 1.24 dockerd took a whole host config
    /// from the body of `start`.
    NoBody,
    /// The build's query parameters go through the policy.
    BuildQuery,
    /// What it does cannot be read by the policy (a tar'd plugin config, a
    /// swarm spec, a gRPC session, a secret): only unchecked roles may.
    Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// Segments; `{x}` matches one segment, like dockerd's `{x}`, and
    /// `{x*}` one or more whole segments, like its greedy `{x:.*}`.
    pub pattern: &'static str,
    pub class: Class,
    pub body: Option<BodyCheck>,
    pub guard: Guard,
    /// dockerd may take the connection over with a plain 200 (attach and
    /// exec start, without an `Upgrade` header): it becomes a tunnel.
    pub hijacks: bool,
}

macro_rules! routes {
    ($($method:literal $pattern:literal $class:ident $(: $body:ident)? $(! $guard:ident)? $(@ $hijack:ident)?;)*) => {
        &[$(Route {
            method: $method,
            pattern: $pattern,
            class: Class::$class,
            body: routes!(@body $($body)?),
            guard: routes!(@guard $($guard)?),
            hijacks: routes!(@hijack $($hijack)?),
        },)*]
    };
    (@body) => { None };
    (@body $b:ident) => { Some(BodyCheck::$b) };
    (@guard) => { Guard::None };
    (@guard $g:ident) => { Guard::$g };
    (@hijack) => { false };
    (@hijack Hijack) => { true };
}

pub const ROUTES: &[Route] = routes! {
    "GET" "/_ping" Read;
    "HEAD" "/_ping" Read;
    "GET" "/version" Read;
    "GET" "/info" Read;
    "GET" "/system/df" Read;
    "GET" "/events" Read;
    "POST" "/auth" Write;

    // Before the container routes, as dockerd registers them, so that
    // DELETE reaches the checkpoint handler.
    "GET" "/containers/{name}/checkpoints" System;
    "POST" "/containers/{name}/checkpoints" System ! Opaque;
    "DELETE" "/containers/{name}/checkpoints/{checkpoint}" System ! Opaque;

    "GET" "/containers/json" Read;
    "POST" "/containers/create" Write: ContainerCreate;
    "POST" "/containers/prune" Write;
    "GET" "/containers/{name*}/json" Read;
    "GET" "/containers/{name*}/top" Read;
    "GET" "/containers/{name*}/changes" Read;
    "GET" "/containers/{name*}/stats" Read;
    "GET" "/containers/{name*}/logs" Logs;
    "GET" "/containers/{name*}/export" Files;
    "HEAD" "/containers/{name*}/archive" Files;
    "GET" "/containers/{name*}/archive" Files;
    "PUT" "/containers/{name*}/archive" Files;
    "POST" "/containers/{name*}/start" Write ! NoBody;
    "POST" "/containers/{name*}/stop" Write;
    "POST" "/containers/{name*}/restart" Write;
    "POST" "/containers/{name*}/kill" Write;
    "POST" "/containers/{name*}/pause" Write;
    "POST" "/containers/{name*}/unpause" Write;
    "POST" "/containers/{name*}/rename" Write;
    "POST" "/containers/{name*}/wait" Write;
    "POST" "/containers/{name*}/update" Write: ContainerUpdate;
    "POST" "/containers/{name*}/resize" Exec;
    "POST" "/containers/{name*}/attach" Exec @ Hijack;
    "GET" "/containers/{name*}/attach/ws" Exec;
    "POST" "/containers/{name*}/exec" Exec: ExecCreate;
    "DELETE" "/containers/{name}" Write;

    "POST" "/exec/{id*}/start" Exec @ Hijack;
    "POST" "/exec/{id*}/resize" Exec;
    "GET" "/exec/{id*}/json" Read;

    "GET" "/images/json" Read;
    "GET" "/images/search" Read;
    "GET" "/images/get" Files;
    "POST" "/images/load" Files;
    "POST" "/images/create" Write;
    "POST" "/images/prune" Write;
    "GET" "/images/{name*}/json" Read;
    "GET" "/images/{name*}/history" Read;
    "GET" "/images/{name*}/attestations" Read;
    "GET" "/images/{name*}/get" Files;
    "POST" "/images/{name*}/push" Write;
    "POST" "/images/{name*}/tag" Write;
    "DELETE" "/images/{name*}" Write;
    "POST" "/commit" Write: Commit;
    "GET" "/distribution/{name*}/json" Read;

    "POST" "/build" Build ! BuildQuery;
    "POST" "/build/prune" Build;
    "POST" "/build/cancel" Build;
    "POST" "/session" Build ! Opaque;
    "POST" "/grpc" Build ! Opaque;

    "GET" "/networks" Read;
    "POST" "/networks/create" Write: NetworkCreate;
    "POST" "/networks/prune" Write;
    "GET" "/networks/{id*}" Read;
    "POST" "/networks/{id*}/connect" Write: NetworkConnect;
    "POST" "/networks/{id*}/disconnect" Write: NetworkDisconnect;
    "DELETE" "/networks/{id*}" Write;

    "GET" "/volumes" Read;
    "POST" "/volumes/create" Write: VolumeCreate;
    "POST" "/volumes/prune" Write;
    "GET" "/volumes/{name*}" Read;
    "PUT" "/volumes/{name*}" System ! Opaque;
    "DELETE" "/volumes/{name*}" Write;

    "GET" "/swarm" System;
    "POST" "/swarm/init" System ! Opaque;
    "POST" "/swarm/join" System ! Opaque;
    "POST" "/swarm/leave" System ! Opaque;
    "POST" "/swarm/update" System ! Opaque;
    "GET" "/swarm/unlockkey" System ! Opaque;
    "POST" "/swarm/unlock" System ! Opaque;
    "GET" "/nodes" System;
    "GET" "/nodes/{id}" System;
    "DELETE" "/nodes/{id}" System ! Opaque;
    "POST" "/nodes/{id}/update" System ! Opaque;
    "GET" "/services" System;
    "POST" "/services/create" System ! Opaque;
    "GET" "/services/{id}" System;
    "DELETE" "/services/{id}" System ! Opaque;
    "POST" "/services/{id}/update" System ! Opaque;
    "GET" "/services/{id}/logs" System;
    "GET" "/tasks" System;
    "GET" "/tasks/{id}" System;
    "GET" "/tasks/{id}/logs" System;
    "GET" "/secrets" System;
    "POST" "/secrets/create" System ! Opaque;
    "GET" "/secrets/{id}" System;
    "DELETE" "/secrets/{id}" System ! Opaque;
    "POST" "/secrets/{id}/update" System ! Opaque;
    "GET" "/configs" System;
    "POST" "/configs/create" System ! Opaque;
    "GET" "/configs/{id}" System;
    "DELETE" "/configs/{id}" System ! Opaque;
    "POST" "/configs/{id}/update" System ! Opaque;

    "GET" "/plugins" System;
    "GET" "/plugins/privileges" System;
    "POST" "/plugins/pull" System: PluginPrivileges;
    "POST" "/plugins/create" System ! Opaque;
    "GET" "/plugins/{name*}/json" System;
    "DELETE" "/plugins/{name*}" System ! Opaque;
    "POST" "/plugins/{name*}/enable" System ! Opaque;
    "POST" "/plugins/{name*}/disable" System ! Opaque;
    "POST" "/plugins/{name*}/upgrade" System: PluginPrivileges;
    "POST" "/plugins/{name*}/push" System ! Opaque;
    "POST" "/plugins/{name*}/set" System ! Opaque;
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    BadEscape,
    NulByte,
    ControlChar,
    NotUtf8,
    DotSegment,
    EmptySegment,
    AmbiguousSlash,
    /// A `/vX.Y` prefix that is not dotted numbers.
    BadVersion,
    /// Below API 1.24, which current dockerd refuses too: older APIs let
    /// `start` replace a container's whole host config.
    OldVersion,
}

impl PathError {
    pub fn message(self) -> &'static str {
        match self {
            PathError::BadEscape => "invalid percent-encoding in path",
            PathError::NulByte => "NUL in path",
            PathError::ControlChar => "control character in path",
            PathError::NotUtf8 => "path is not UTF-8",
            PathError::DotSegment => "dot segment in path",
            PathError::EmptySegment => "empty segment in path",
            PathError::AmbiguousSlash => "encoded slash changes the route",
            PathError::BadVersion => "invalid API version in path",
            PathError::OldVersion => "API versions below 1.24 are not supported",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    Route(&'static Route),
    /// The path is well-formed but no route has it (with this method).
    NoRoute,
}

/// Decodes `%XX` once, as Go's URL parser does for the path. `keep_slash`
/// leaves `%2F` encoded, to see the route a second reader might pick.
pub fn decode_path(raw: &str, keep_slash: bool) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEscape);
            };
            let v = (hi * 16 + lo) as u8;
            if v == 0 {
                return Err(PathError::NulByte);
            }
            if keep_slash && v == b'/' {
                out.extend_from_slice(&bytes[i..i + 3]);
            } else {
                out.push(v);
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlChar);
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

/// dockerd's optional `/v{version:[0-9.]+}` prefix, removed.
pub fn strip_version(path: &str) -> &str {
    split_version(path).1
}

/// The `/v{version:[0-9.]+}` prefix's version, if any, and the rest.
fn split_version(path: &str) -> (Option<&str>, &str) {
    let Some(rest) = path.strip_prefix("/v") else {
        return (None, path);
    };
    let n = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    if n > 0 && rest.as_bytes().get(n) == Some(&b'/') {
        (Some(&rest[..n]), &rest[n..])
    } else {
        (None, path)
    }
}

/// The oldest API version served: dockerd 25 and later refuse older ones.
const MIN_API: [u32; 2] = [1, 24];

/// Accepts only dotted decimal numbers at or above `MIN_API`. dockerd
/// reads unparsable parts as 0; refusing them is stricter and agrees.
fn check_version(version: &str) -> Result<(), PathError> {
    let parts = version
        .split('.')
        .map(|p| match p.len() {
            1..=9 => p.parse::<u32>().map_err(|_| PathError::BadVersion),
            _ => Err(PathError::BadVersion),
        })
        .collect::<Result<Vec<u32>, _>>()?;
    if parts.as_slice() < MIN_API.as_slice() {
        return Err(PathError::OldVersion);
    }
    Ok(())
}

fn check_segments(path: &str) -> Result<(), PathError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathError::EmptySegment);
    };
    for seg in rest.split('/') {
        match seg {
            "" => return Err(PathError::EmptySegment),
            "." | ".." => return Err(PathError::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `path` (its segments) matches what is left of a route pattern:
/// `""`, or `"/segment..."`. Read in place: no route allocates to be tried.
fn match_pattern(pattern: &str, path: &[&str]) -> bool {
    let Some(tail) = pattern.strip_prefix('/') else {
        return path.is_empty();
    };
    let (p, rest) = tail.find('/').map_or((tail, ""), |i| (&tail[..i], &tail[i..]));
    if p.ends_with("*}") {
        // Greedy like `.*`, but a name is never empty.
        (1..=path.len())
            .rev()
            .any(|take| match_pattern(rest, &path[take..]))
    } else if p.starts_with('{') {
        !path.is_empty() && match_pattern(rest, &path[1..])
    } else {
        path.first() == Some(&p) && match_pattern(rest, &path[1..])
    }
}

fn lookup(method: &str, path: &str) -> Option<&'static Route> {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    ROUTES
        .iter()
        .find(|r| r.method == method && match_pattern(r.pattern, &segments))
}

/// Finds the route of a request target (path and optional query).
pub fn match_route(method: &str, target: &str) -> Result<Matched, PathError> {
    let raw = target.split('?').next().unwrap_or("");
    let decoded = decode_path(raw, false)?;
    let (version, path) = split_version(&decoded);
    if let Some(v) = version {
        check_version(v)?;
    }
    check_segments(path)?;
    let found = lookup(method, path);
    if raw.contains('%') {
        let kept = decode_path(raw, true)?;
        let kept_path = strip_version(&kept);
        let same_prefix = kept.len() - kept_path.len() == decoded.len() - path.len();
        if !same_prefix || lookup(method, kept_path) != found {
            return Err(PathError::AmbiguousSlash);
        }
    }
    Ok(found.map_or(Matched::NoRoute, Matched::Route))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(method: &str, target: &str) -> Option<Class> {
        match match_route(method, target) {
            Ok(Matched::Route(r)) => Some(r.class),
            _ => None,
        }
    }

    #[test]
    fn the_table_says_which_routes_hijack() {
        let hijacks = |m: &str, t: &str| match match_route(m, t) {
            Ok(Matched::Route(r)) => Some(r.hijacks),
            _ => None,
        };
        assert_eq!(hijacks("POST", "/containers/abc/attach"), Some(true));
        assert_eq!(hijacks("POST", "/v1.47/exec/abc/start"), Some(true));
        assert_eq!(hijacks("GET", "/containers/abc/attach/ws"), Some(false));
        assert_eq!(hijacks("POST", "/containers/abc/start"), Some(false));
        assert_eq!(hijacks("POST", "/exec/abc/resize"), Some(false));
        let marked: Vec<_> = ROUTES.iter().filter(|r| r.hijacks).map(|r| r.pattern).collect();
        assert_eq!(marked, ["/containers/{name*}/attach", "/exec/{id*}/start"]);
    }

    #[test]
    fn table_is_consistent() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(a.pattern.starts_with('/'));
            for b in &ROUTES[i + 1..] {
                assert!(!(a.method == b.method && a.pattern == b.pattern), "{a:?} twice");
            }
        }
    }

    #[test]
    fn common_requests() {
        assert_eq!(class_of("GET", "/_ping"), Some(Class::Read));
        assert_eq!(class_of("GET", "/v1.47/containers/json?all=1"), Some(Class::Read));
        assert_eq!(
            class_of("POST", "/v1.41/containers/create?name=x"),
            Some(Class::Write)
        );
        assert_eq!(
            class_of("GET", "/containers/abc/logs?follow=1"),
            Some(Class::Logs)
        );
        assert_eq!(class_of("GET", "/containers/abc/export"), Some(Class::Files));
        assert_eq!(
            class_of("HEAD", "/containers/abc/archive?path=/etc"),
            Some(Class::Files)
        );
        assert_eq!(class_of("POST", "/exec/abc/start"), Some(Class::Exec));
        assert_eq!(
            class_of("GET", "/images/library/busybox:latest/json"),
            Some(Class::Read)
        );
        assert_eq!(
            class_of("GET", "/images/registry:5000/a/b/get"),
            Some(Class::Files)
        );
        assert_eq!(class_of("DELETE", "/images/a/b"), Some(Class::Write));
        assert_eq!(class_of("POST", "/session"), Some(Class::Build));
        assert_eq!(class_of("POST", "/plugins/pull?remote=x"), Some(Class::System));
    }

    #[test]
    fn greedy_names_match_like_dockerd() {
        assert_eq!(class_of("GET", "/containers/a/archive/json"), Some(Class::Read));
        assert_eq!(class_of("GET", "/containers/create/export"), Some(Class::Files));
        let r = match_route("POST", "/containers/create").unwrap();
        assert!(matches!(r, Matched::Route(r) if r.body == Some(BodyCheck::ContainerCreate)));
    }

    #[test]
    fn unknown_routes_are_not_routes() {
        assert_eq!(match_route("GET", "/Containers/json"), Ok(Matched::NoRoute));
        assert_eq!(match_route("PATCH", "/containers/json"), Ok(Matched::NoRoute));
        assert_eq!(match_route("GET", "/v1.47"), Ok(Matched::NoRoute));
        assert_eq!(match_route("GET", "/vx/info"), Ok(Matched::NoRoute));
    }

    #[test]
    fn version_prefixes_below_1_24_or_malformed_are_refused() {
        assert_eq!(class_of("GET", "/v1.24/info"), Some(Class::Read));
        assert_eq!(class_of("GET", "/v1.41.0/info"), Some(Class::Read));
        assert_eq!(class_of("GET", "/v2/info"), Some(Class::Read));
        for old in [
            "/v1.23/containers/x/start",
            "/v1/info",
            "/v1.9/info",
            "/v0.99/info",
            "/v1.2.3/info",
        ] {
            assert_eq!(match_route("POST", old), Err(PathError::OldVersion), "{old}");
        }
        for bad in [
            "/v./info",
            "/v1..24/info",
            "/v1.24./info",
            "/v9999999999.1/info",
            "/v%31.20/info",
        ] {
            assert!(
                matches!(
                    match_route("GET", bad),
                    Err(PathError::BadVersion | PathError::OldVersion)
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn checkpoint_routes_come_before_container_routes() {
        assert_eq!(
            class_of("DELETE", "/containers/x/checkpoints/cp1"),
            Some(Class::System)
        );
        assert_eq!(class_of("DELETE", "/containers/x"), Some(Class::Write));
        // dockerd's DELETE /containers/{name} takes one segment.
        assert_eq!(match_route("DELETE", "/containers/a/b"), Ok(Matched::NoRoute));
        assert_eq!(class_of("DELETE", "/images/a/b"), Some(Class::Write));
    }

    #[test]
    fn path_tricks_are_refused() {
        assert_eq!(
            match_route("GET", "//containers/json"),
            Err(PathError::EmptySegment)
        );
        assert_eq!(
            match_route("GET", "/containers/json/"),
            Err(PathError::EmptySegment)
        );
        assert_eq!(match_route("GET", "/./info"), Err(PathError::DotSegment));
        assert_eq!(
            match_route("GET", "/containers/%2e%2e/info"),
            Err(PathError::DotSegment)
        );
        assert_eq!(match_route("GET", "/info%00"), Err(PathError::NulByte));
        assert_eq!(match_route("GET", "/info%zz"), Err(PathError::BadEscape));
        assert_eq!(match_route("GET", "/info%2"), Err(PathError::BadEscape));
        assert_eq!(match_route("GET", "/info%0a"), Err(PathError::ControlChar));
        assert_eq!(
            match_route("GET", "/containers/x%2Fexport"),
            Err(PathError::AmbiguousSlash)
        );
        assert_eq!(
            match_route("GET", "/v1.41%2Finfo"),
            Err(PathError::AmbiguousSlash)
        );
        assert_eq!(match_route("GET", "/%ff"), Err(PathError::NotUtf8));
    }

    #[test]
    fn harmless_escapes_are_decoded() {
        assert_eq!(class_of("GET", "/containers/%61bc/json"), Some(Class::Read));
        assert_eq!(class_of("GET", "/images/a%2Fb/json"), Some(Class::Read));
        assert_eq!(class_of("GET", "/%69nfo"), Some(Class::Read));
    }
}

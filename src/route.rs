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

/// Which request bodies the policy reads before forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCheck {
    ContainerCreate,
    ContainerUpdate,
    ExecCreate,
    VolumeCreate,
    Service,
    PluginPrivileges,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// Segments; `{x}` matches one or more whole segments, like `{x:.*}`.
    pub pattern: &'static str,
    pub class: Class,
    pub body: Option<BodyCheck>,
}

macro_rules! routes {
    ($($method:literal $pattern:literal $class:ident $(: $body:ident)?;)*) => {
        &[$(Route {
            method: $method,
            pattern: $pattern,
            class: Class::$class,
            body: routes!(@body $($body)?),
        },)*]
    };
    (@body) => { None };
    (@body $b:ident) => { Some(BodyCheck::$b) };
}

pub const ROUTES: &[Route] = routes! {
    "GET" "/_ping" Read;
    "HEAD" "/_ping" Read;
    "GET" "/version" Read;
    "GET" "/info" Read;
    "GET" "/system/df" Read;
    "GET" "/events" Read;
    "POST" "/auth" Write;

    "GET" "/containers/json" Read;
    "POST" "/containers/create" Write: ContainerCreate;
    "POST" "/containers/prune" Write;
    "GET" "/containers/{name}/json" Read;
    "GET" "/containers/{name}/top" Read;
    "GET" "/containers/{name}/changes" Read;
    "GET" "/containers/{name}/stats" Read;
    "GET" "/containers/{name}/logs" Logs;
    "GET" "/containers/{name}/export" Files;
    "HEAD" "/containers/{name}/archive" Files;
    "GET" "/containers/{name}/archive" Files;
    "PUT" "/containers/{name}/archive" Files;
    "POST" "/containers/{name}/start" Write;
    "POST" "/containers/{name}/stop" Write;
    "POST" "/containers/{name}/restart" Write;
    "POST" "/containers/{name}/kill" Write;
    "POST" "/containers/{name}/pause" Write;
    "POST" "/containers/{name}/unpause" Write;
    "POST" "/containers/{name}/rename" Write;
    "POST" "/containers/{name}/wait" Write;
    "POST" "/containers/{name}/update" Write: ContainerUpdate;
    "POST" "/containers/{name}/resize" Exec;
    "POST" "/containers/{name}/attach" Exec;
    "GET" "/containers/{name}/attach/ws" Exec;
    "POST" "/containers/{name}/exec" Exec: ExecCreate;
    "DELETE" "/containers/{name}" Write;
    "GET" "/containers/{name}/checkpoints" System;
    "POST" "/containers/{name}/checkpoints" System;
    "DELETE" "/containers/{name}/checkpoints/{checkpoint}" System;

    "POST" "/exec/{id}/start" Exec;
    "POST" "/exec/{id}/resize" Exec;
    "GET" "/exec/{id}/json" Read;

    "GET" "/images/json" Read;
    "GET" "/images/search" Read;
    "GET" "/images/get" Files;
    "POST" "/images/load" Files;
    "POST" "/images/create" Write;
    "POST" "/images/prune" Write;
    "GET" "/images/{name}/json" Read;
    "GET" "/images/{name}/history" Read;
    "GET" "/images/{name}/get" Files;
    "POST" "/images/{name}/push" Write;
    "POST" "/images/{name}/tag" Write;
    "DELETE" "/images/{name}" Write;
    "POST" "/commit" Write;
    "GET" "/distribution/{name}/json" Read;

    "POST" "/build" Build;
    "POST" "/build/prune" Build;
    "POST" "/build/cancel" Build;
    "POST" "/session" Build;
    "POST" "/grpc" Build;

    "GET" "/networks" Read;
    "POST" "/networks/create" Write;
    "POST" "/networks/prune" Write;
    "GET" "/networks/{id}" Read;
    "POST" "/networks/{id}/connect" Write;
    "POST" "/networks/{id}/disconnect" Write;
    "DELETE" "/networks/{id}" Write;

    "GET" "/volumes" Read;
    "POST" "/volumes/create" Write: VolumeCreate;
    "POST" "/volumes/prune" Write;
    "GET" "/volumes/{name}" Read;
    "PUT" "/volumes/{name}" Write;
    "DELETE" "/volumes/{name}" Write;

    "GET" "/swarm" System;
    "POST" "/swarm/init" System;
    "POST" "/swarm/join" System;
    "POST" "/swarm/leave" System;
    "POST" "/swarm/update" System;
    "GET" "/swarm/unlockkey" System;
    "POST" "/swarm/unlock" System;
    "GET" "/nodes" System;
    "GET" "/nodes/{id}" System;
    "DELETE" "/nodes/{id}" System;
    "POST" "/nodes/{id}/update" System;
    "GET" "/services" System;
    "POST" "/services/create" System: Service;
    "GET" "/services/{id}" System;
    "DELETE" "/services/{id}" System;
    "POST" "/services/{id}/update" System: Service;
    "GET" "/services/{id}/logs" System;
    "GET" "/tasks" System;
    "GET" "/tasks/{id}" System;
    "GET" "/tasks/{id}/logs" System;
    "GET" "/secrets" System;
    "POST" "/secrets/create" System;
    "GET" "/secrets/{id}" System;
    "DELETE" "/secrets/{id}" System;
    "POST" "/secrets/{id}/update" System;
    "GET" "/configs" System;
    "POST" "/configs/create" System;
    "GET" "/configs/{id}" System;
    "DELETE" "/configs/{id}" System;
    "POST" "/configs/{id}/update" System;

    "GET" "/plugins" System;
    "GET" "/plugins/privileges" System;
    "POST" "/plugins/pull" System: PluginPrivileges;
    "POST" "/plugins/create" System;
    "GET" "/plugins/{name}/json" System;
    "DELETE" "/plugins/{name}" System;
    "POST" "/plugins/{name}/enable" System;
    "POST" "/plugins/{name}/disable" System;
    "POST" "/plugins/{name}/upgrade" System: PluginPrivileges;
    "POST" "/plugins/{name}/push" System;
    "POST" "/plugins/{name}/set" System;
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
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    let n = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    if n > 0 && rest.as_bytes().get(n) == Some(&b'/') {
        &rest[n..]
    } else {
        path
    }
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

fn match_pattern(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p.starts_with('{') => {
            // Greedy like `.*`, but a name is never empty.
            (1..=path.len())
                .rev()
                .any(|take| match_pattern(rest, &path[take..]))
        }
        Some((p, rest)) => path.first() == Some(p) && match_pattern(rest, &path[1..]),
    }
}

fn lookup(method: &str, path: &str) -> Option<&'static Route> {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    ROUTES.iter().find(|r| {
        r.method == method && {
            let pattern: Vec<&str> = r.pattern.split('/').skip(1).collect();
            match_pattern(&pattern, &segments)
        }
    })
}

/// Finds the route of a request target (path and optional query).
pub fn match_route(method: &str, target: &str) -> Result<Matched, PathError> {
    let raw = target.split('?').next().unwrap_or("");
    let decoded = decode_path(raw, false)?;
    let path = strip_version(&decoded);
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
    fn odd_version_prefixes_route_like_dockerd() {
        assert_eq!(class_of("GET", "/v./info"), Some(Class::Read));
        assert_eq!(class_of("GET", "/v1/containers/a/export"), Some(Class::Files));
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

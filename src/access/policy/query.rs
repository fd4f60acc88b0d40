//! The build's query parameters, decoded as Go's `url.ParseQuery` does and
//! checked against an allow-list like the bodies are.

use super::{rules, Checker, Denial, Policy};

/// `key=value` pairs of a target's query, decoded (`%XX` and `+`). `None`
/// when Go would refuse it: a bad escape, or a `;` separator.
pub fn query_pairs(target: &str) -> Option<Vec<(String, String)>> {
    let Some((_, query)) = target.split_once('?') else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if pair.contains(';') {
            return None;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((unescape(k)?, unescape(v)?));
    }
    Some(out)
}

/// Go's `QueryUnescape`: `+` is a space, then `%XX` escapes; control
/// characters, which Go would pass, are refused too (fail closed).
fn unescape(s: &str) -> Option<String> {
    crate::access::route::decode_path(&s.replace('+', " "), false).ok()
}

/// What a build parameter may hold.
enum Param {
    Free,
    /// Only empty.
    Zero,
    /// A network the build's containers join.
    Network,
    /// One of these values.
    OneOf(&'static [&'static str]),
}

/// `POST /build`'s parameters, from the spec and from what the docker CLI
/// sends. BuildKit (`version=2`) is refused: its requests travel inside a
/// gRPC session the policy cannot read (they can ask for the host network).
const BUILD_PARAMS: [(&str, Param); 31] = [
    ("dockerfile", Param::Free),
    ("t", Param::Free),
    ("extrahosts", Param::Free),
    ("remote", Param::Free),
    ("q", Param::Free),
    ("nocache", Param::Free),
    ("cachefrom", Param::Free),
    ("pull", Param::Free),
    ("rm", Param::Free),
    ("forcerm", Param::Free),
    ("memory", Param::Free),
    ("memswap", Param::Free),
    ("cpushares", Param::Free),
    ("cpusetcpus", Param::Free),
    ("cpusetmems", Param::Free),
    ("cpuperiod", Param::Free),
    ("cpuquota", Param::Free),
    ("buildargs", Param::Free),
    ("shmsize", Param::Free),
    ("squash", Param::Free),
    ("labels", Param::Free),
    ("platform", Param::Free),
    ("target", Param::Free),
    ("outputs", Param::Free),
    ("ulimits", Param::Free),
    ("networkmode", Param::Network),
    ("version", Param::OneOf(&["", "1"])),
    ("isolation", Param::OneOf(&["", "default"])),
    ("cgroupparent", Param::Zero),
    ("session", Param::Zero),
    ("securityopt", Param::Zero),
];

/// Checks every occurrence of every parameter of a build request.
pub fn check_build_query(target: &str, policy: &Policy) -> Result<(), Denial> {
    let c = &Checker::new(policy);
    let pairs = query_pairs(target)
        .ok_or_else(|| Denial::new("query", "query", "the query string cannot be decoded"))?;
    for (key, value) in &pairs {
        let name = format!("query.{key}");
        let param = BUILD_PARAMS.iter().find(|(k, _)| k == key).map(|(_, p)| p);
        let ok = match param {
            Some(Param::Free) => true,
            Some(Param::Network) => {
                rules::network_name(c, value, &name)?;
                true
            }
            Some(Param::OneOf(allowed)) => allowed.contains(&value.as_str()),
            Some(Param::Zero) | None => value.is_empty(),
        };
        if !ok {
            return Err(Denial::new(
                "not_allowed",
                &name,
                format!("build parameter {key}={value:?} is not allowed"),
            ));
        }
    }
    Ok(())
}

//! Reading the JSON config file into [`FileConfig`].
//!
//! One table-driven serde visitor reads every object of the file: a
//! [`Shape`] lists an object's keys and what each holds. serde's derive
//! made a visitor per struct, about 40 KB of a MIPS binary; this one raises
//! the same errors at the same places (unknown, duplicate and missing
//! fields, wrong types, an object given as an array of its fields), so the
//! messages, with their line and column, are the ones the derive gave. The
//! values themselves are read by serde's own `Deserialize` impls.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{
    AuthFile, CertFile, FileConfig, PolicyFile, RoleFile, RpcdFile, TlsFile, TokenFile, UnixPeerFile,
    UserFile,
};

/// What one key of an object holds. Optional unless `Req…`; an optional
/// key given `null` is as if absent.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    U64,
    Usize,
    Strs,
    ReqStr,
    ReqU32,
    ReqStrs,
    /// An object.
    Obj(&'static Shape),
    /// An array of objects.
    Objs(&'static Shape),
    /// An object of objects, by name.
    ObjMap(&'static Shape),
}

/// An object of the file: the struct's name (for messages), its keys in
/// declaration order (the order of an array given for it) and their kinds.
struct Shape {
    name: &'static str,
    keys: &'static [&'static str],
    kinds: &'static [Kind],
}

use Kind::*;

static FILE: Shape = Shape {
    name: "FileConfig",
    keys: &[
        "listen",
        "upstream",
        "log_level",
        "max_connections",
        "max_connections_per_address",
        "body_budget_bytes",
        "max_head_bytes",
        "max_headers",
        "header_timeout_secs",
        "idle_timeout_secs",
        "shutdown_grace_secs",
        "unix_mode",
        "no_splice",
        "ui",
        "insecure",
        "auth",
        "roles",
        "cors_origins",
        "allowed_hosts",
        "policy",
        "dry_run",
        "max_consoles",
        "console_ping_secs",
        "console_idle_secs",
        "tls",
    ],
    kinds: &[
        Strs,
        Str,
        Str,
        Usize,
        Usize,
        Usize,
        Usize,
        Usize,
        U64,
        U64,
        U64,
        Str,
        Bool,
        Bool,
        Bool,
        Obj(&AUTH),
        ObjMap(&ROLE),
        Strs,
        Strs,
        Obj(&POLICY),
        Bool,
        Usize,
        U64,
        U64,
        Obj(&TLS),
    ],
};

static TLS: Shape = Shape {
    name: "TlsFile",
    keys: &[
        "cert",
        "key",
        "client_ca",
        "client_auth",
        "handshake_timeout_secs",
        "max_handshakes",
    ],
    kinds: &[Str, Str, Str, Str, U64, Usize],
};

static CERT: Shape = Shape {
    name: "CertFile",
    keys: &["cn", "san", "role"],
    kinds: &[Str, Str, ReqStr],
};

static AUTH: Shape = Shape {
    name: "AuthFile",
    keys: &[
        "tokens",
        "users",
        "rpcd",
        "unix_peers",
        "certs",
        "cert_default_role",
        "session_ttl_secs",
    ],
    kinds: &[
        Objs(&TOKEN),
        Objs(&USER),
        Obj(&RPCD),
        Objs(&UNIX_PEER),
        Objs(&CERT),
        Str,
        U64,
    ],
};

static UNIX_PEER: Shape = Shape {
    name: "UnixPeerFile",
    keys: &["uid", "role"],
    kinds: &[ReqU32, ReqStr],
};

static TOKEN: Shape = Shape {
    name: "TokenFile",
    keys: &["name", "sha256", "role"],
    kinds: &[ReqStr, ReqStr, ReqStr],
};

static USER: Shape = Shape {
    name: "UserFile",
    keys: &["name", "password", "role"],
    kinds: &[ReqStr, ReqStr, ReqStr],
};

static RPCD: Shape = Shape {
    name: "RpcdFile",
    keys: &["enabled", "ubus", "acl_object"],
    kinds: &[Bool, Str, Str],
};

static ROLE: Shape = Shape {
    name: "RoleFile",
    keys: &["classes", "methods", "check_bodies", "policy"],
    kinds: &[ReqStrs, Strs, Bool, Obj(&POLICY)],
};

static POLICY: Shape = Shape {
    name: "PolicyFile",
    keys: &[
        "bind_dirs",
        "cap_add_allow",
        "volume_types",
        "apparmor_profiles",
        "allow_privileged",
        "allow_devices",
        "allow_host_namespaces",
        "allow_host_network",
        "allow_volumes_from",
        "allow_unconfined",
        "max_body_bytes",
    ],
    kinds: &[Strs, Strs, Strs, Strs, Bool, Bool, Bool, Bool, Bool, Bool, Usize],
};

/// Parses the config file, as `serde_json::from_slice::<FileConfig>` with
/// a derived `Deserialize` did.
pub fn parse(text: &str) -> Result<FileConfig, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text.as_bytes());
    let file = Object(&FILE).deserialize(&mut de)?;
    de.end()?;
    Ok(FileConfig::from(Fields(file)))
}

impl Kind {
    fn required(self) -> bool {
        matches!(self, ReqStr | ReqU32 | ReqStrs)
    }
}

impl<'de> DeserializeSeed<'de> for Kind {
    /// `Null` for an optional key given `null`.
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Ok(match self {
            Str => Option::<String>::deserialize(d)?.into(),
            Bool => Option::<bool>::deserialize(d)?.into(),
            U64 => Option::<u64>::deserialize(d)?.into(),
            Usize => Option::<usize>::deserialize(d)?.into(),
            Strs => Option::<Vec<String>>::deserialize(d)?.into(),
            ReqStr => String::deserialize(d)?.into(),
            ReqU32 => u32::deserialize(d)?.into(),
            ReqStrs => Vec::<String>::deserialize(d)?.into(),
            Obj(_) | Objs(_) | ObjMap(_) => d.deserialize_option(Nested(self))?,
        })
    }
}

/// An optional object, array of objects or object of objects.
struct Nested(Kind);

impl<'de> Visitor<'de> for Nested {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("option")
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Obj(shape) => Object(shape).deserialize(d),
            Objs(shape) => d.deserialize_seq(List(shape)),
            ObjMap(shape) => d.deserialize_map(Named(shape)),
            _ => Ok(Value::Null),
        }
    }
}

/// An array of objects (serde's `Vec<T>`).
struct List(&'static Shape);

impl<'de> Visitor<'de> for List {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Object(self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
}

/// An object of objects by name (serde's `BTreeMap<String, T>`: a name
/// given twice keeps its last object).
struct Named(&'static Shape);

impl<'de> Visitor<'de> for Named {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut named = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(Object(self.0))?;
            named.insert(name, value);
        }
        Ok(Value::Object(named))
    }
}

/// One object of a [`Shape`], as a map of the keys given (not null).
#[derive(Clone, Copy)]
struct Object(&'static Shape);

impl<'de> DeserializeSeed<'de> for Object {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_struct(self.0.name, self.0.keys, self)
    }
}

impl<'de> Visitor<'de> for Object {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "struct {}", self.0.name)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let shape = self.0;
        let mut out = Map::new();
        let mut seen = 0u64;
        while let Some(i) = map.next_key_seed(Key(shape.keys))? {
            if seen & 1 << i != 0 {
                return Err(de::Error::duplicate_field(shape.keys[i]));
            }
            seen |= 1 << i;
            let value = map.next_value_seed(shape.kinds[i])?;
            if !value.is_null() {
                out.insert(shape.keys[i].into(), value);
            }
        }
        for (i, kind) in shape.kinds.iter().enumerate() {
            if kind.required() && seen & 1 << i == 0 {
                return Err(de::Error::missing_field(shape.keys[i]));
            }
        }
        Ok(Value::Object(out))
    }

    /// serde's derive takes a struct as an array of all its fields, in
    /// order (optional ones too).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let shape = self.0;
        let mut out = Map::new();
        for (i, kind) in shape.kinds.iter().enumerate() {
            let Some(value) = seq.next_element_seed(*kind)? else {
                return Err(de::Error::invalid_length(i, &Elements(shape)));
            };
            if !value.is_null() {
                out.insert(shape.keys[i].into(), value);
            }
        }
        Ok(Value::Object(out))
    }
}

/// What an array given for an object lacked: "struct X with N elements".
struct Elements(&'static Shape);

impl de::Expected for Elements {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let n = self.0.keys.len();
        let s = if n == 1 { "" } else { "s" };
        write!(f, "struct {} with {n} element{s}", self.0.name)
    }
}

/// A key of an object: its index in the shape's keys.
struct Key(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        self.0
            .iter()
            .position(|k| *k == key)
            .ok_or_else(|| E::unknown_field(key, self.0))
    }
}

/// A parsed object's values, taken out by key. Their types were checked
/// while parsing, so what is absent or null is `None`.
struct Fields(Value);

impl Fields {
    fn take(&mut self, key: &str) -> Value {
        match &mut self.0 {
            Value::Object(map) => map.remove(key).unwrap_or_default(),
            _ => Value::Null,
        }
    }

    fn str(&mut self, key: &str) -> Option<String> {
        match self.take(key) {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        self.take(key).as_bool()
    }

    fn u64(&mut self, key: &str) -> Option<u64> {
        self.take(key).as_u64()
    }

    fn usize(&mut self, key: &str) -> Option<usize> {
        self.u64(key).map(|n| n as usize)
    }

    fn strs(&mut self, key: &str) -> Option<Vec<String>> {
        self.list(key, |v| match v {
            Value::String(s) => s,
            _ => String::new(),
        })
    }

    fn obj<T: From<Fields>>(&mut self, key: &str) -> Option<T> {
        match self.take(key) {
            Value::Null => None,
            v => Some(T::from(Fields(v))),
        }
    }

    fn objs<T: From<Fields>>(&mut self, key: &str) -> Option<Vec<T>> {
        self.list(key, |v| T::from(Fields(v)))
    }

    fn list<T>(&mut self, key: &str, each: impl FnMut(Value) -> T) -> Option<Vec<T>> {
        match self.take(key) {
            Value::Array(items) => Some(items.into_iter().map(each).collect()),
            _ => None,
        }
    }
}

impl From<Fields> for FileConfig {
    fn from(mut f: Fields) -> FileConfig {
        FileConfig {
            listen: f.strs("listen"),
            upstream: f.str("upstream"),
            log_level: f.str("log_level"),
            max_connections: f.usize("max_connections"),
            max_connections_per_address: f.usize("max_connections_per_address"),
            body_budget_bytes: f.usize("body_budget_bytes"),
            max_head_bytes: f.usize("max_head_bytes"),
            max_headers: f.usize("max_headers"),
            header_timeout_secs: f.u64("header_timeout_secs"),
            idle_timeout_secs: f.u64("idle_timeout_secs"),
            shutdown_grace_secs: f.u64("shutdown_grace_secs"),
            unix_mode: f.str("unix_mode"),
            no_splice: f.bool("no_splice"),
            ui: f.bool("ui"),
            insecure: f.bool("insecure"),
            auth: f.obj("auth"),
            roles: match f.take("roles") {
                Value::Object(named) => Some(
                    named
                        .into_iter()
                        .map(|(name, role)| (name, RoleFile::from(Fields(role))))
                        .collect(),
                ),
                _ => None,
            },
            cors_origins: f.strs("cors_origins"),
            allowed_hosts: f.strs("allowed_hosts"),
            policy: f.obj("policy"),
            dry_run: f.bool("dry_run"),
            max_consoles: f.usize("max_consoles"),
            console_ping_secs: f.u64("console_ping_secs"),
            console_idle_secs: f.u64("console_idle_secs"),
            tls: f.obj("tls"),
        }
    }
}

impl From<Fields> for TlsFile {
    fn from(mut f: Fields) -> TlsFile {
        TlsFile {
            cert: f.str("cert"),
            key: f.str("key"),
            client_ca: f.str("client_ca"),
            client_auth: f.str("client_auth"),
            handshake_timeout_secs: f.u64("handshake_timeout_secs"),
            max_handshakes: f.usize("max_handshakes"),
        }
    }
}

impl From<Fields> for CertFile {
    fn from(mut f: Fields) -> CertFile {
        CertFile {
            cn: f.str("cn"),
            san: f.str("san"),
            role: f.str("role").unwrap_or_default(),
        }
    }
}

impl From<Fields> for AuthFile {
    fn from(mut f: Fields) -> AuthFile {
        AuthFile {
            tokens: f.objs("tokens"),
            users: f.objs("users"),
            rpcd: f.obj("rpcd"),
            unix_peers: f.objs("unix_peers"),
            certs: f.objs("certs"),
            cert_default_role: f.str("cert_default_role"),
            session_ttl_secs: f.u64("session_ttl_secs"),
        }
    }
}

impl From<Fields> for UnixPeerFile {
    fn from(mut f: Fields) -> UnixPeerFile {
        UnixPeerFile {
            uid: f.u64("uid").unwrap_or_default() as u32,
            role: f.str("role").unwrap_or_default(),
        }
    }
}

impl From<Fields> for TokenFile {
    fn from(mut f: Fields) -> TokenFile {
        TokenFile {
            name: f.str("name").unwrap_or_default(),
            sha256: f.str("sha256").unwrap_or_default(),
            role: f.str("role").unwrap_or_default(),
        }
    }
}

impl From<Fields> for UserFile {
    fn from(mut f: Fields) -> UserFile {
        UserFile {
            name: f.str("name").unwrap_or_default(),
            password: f.str("password").unwrap_or_default(),
            role: f.str("role").unwrap_or_default(),
        }
    }
}

impl From<Fields> for RpcdFile {
    fn from(mut f: Fields) -> RpcdFile {
        RpcdFile {
            enabled: f.bool("enabled"),
            ubus: f.str("ubus"),
            acl_object: f.str("acl_object"),
        }
    }
}

impl From<Fields> for RoleFile {
    fn from(mut f: Fields) -> RoleFile {
        RoleFile {
            classes: f.strs("classes").unwrap_or_default(),
            methods: f.strs("methods"),
            check_bodies: f.bool("check_bodies"),
            policy: f.obj("policy"),
        }
    }
}

impl From<Fields> for PolicyFile {
    fn from(mut f: Fields) -> PolicyFile {
        PolicyFile {
            bind_dirs: f.strs("bind_dirs"),
            cap_add_allow: f.strs("cap_add_allow"),
            volume_types: f.strs("volume_types"),
            apparmor_profiles: f.strs("apparmor_profiles"),
            allow_privileged: f.bool("allow_privileged"),
            allow_devices: f.bool("allow_devices"),
            allow_host_namespaces: f.bool("allow_host_namespaces"),
            allow_host_network: f.bool("allow_host_network"),
            allow_volumes_from: f.bool("allow_volumes_from"),
            allow_unconfined: f.bool("allow_unconfined"),
            max_body_bytes: f.usize("max_body_bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_its_kind() {
        for shape in [
            &FILE, &TLS, &CERT, &AUTH, &UNIX_PEER, &TOKEN, &USER, &RPCD, &ROLE, &POLICY,
        ] {
            assert_eq!(shape.keys.len(), shape.kinds.len(), "{}", shape.name);
        }
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    /// The messages serde's derive gave, word for word with their positions.
    #[test]
    fn errors_are_the_derives() {
        for (text, message) in [
            (
                r#"{"auth":{"rpcd":{"x":1}}}"#,
                "unknown field `x`, expected one of `enabled`, `ubus`, `acl_object` at line 1 column 20",
            ),
            (
                r#"{"tls":{"cert":"a","cert":"b"}}"#,
                "duplicate field `cert` at line 1 column 25",
            ),
            (
                r#"{"auth":{"tokens":[{"name":"t","role":"read"}]}}"#,
                "missing field `sha256` at line 1 column 45",
            ),
            (
                r#"{"max_headers":-1}"#,
                "invalid value: integer `-1`, expected usize at line 1 column 17",
            ),
            (
                r#"{"auth":{"unix_peers":[{"uid":4294967296,"role":"read"}]}}"#,
                "invalid value: integer `4294967296`, expected u32 at line 1 column 40",
            ),
            (
                r#"{"tls":["c","k"]}"#,
                "invalid length 2, expected struct TlsFile with 6 elements at line 1 column 16",
            ),
            (
                r#"{"roles":{"r":5}}"#,
                "invalid type: integer `5`, expected struct RoleFile at line 1 column 15",
            ),
            (
                r#"{"roles":[]}"#,
                "invalid type: sequence, expected a map at line 1 column 9",
            ),
            (
                r#"{"auth":{"certs":{}}}"#,
                "invalid type: map, expected a sequence at line 1 column 17",
            ),
        ] {
            assert_eq!(error(text), message, "{text}");
        }
    }

    #[test]
    fn values_land_in_their_fields() {
        let f = parse(
            r#"{"listen":["a"],"max_headers":9,"no_splice":null,
                "roles":{"b":{"classes":["read"]},"a":{"classes":[]},"b":{"classes":["logs"],"check_bodies":false}},
                "auth":{"unix_peers":[["7","x"]],"rpcd":{}},"policy":{"bind_dirs":["/x"],"max_body_bytes":5}}"#,
        )
        .unwrap_err();
        assert!(f.to_string().contains("expected u32"), "{f}");
        let f = parse(
            r#"{"listen":["a"],"max_headers":9,"no_splice":null,
                "roles":{"b":{"classes":["read"]},"a":{"classes":[]},"b":{"classes":["logs"],"check_bodies":false}},
                "auth":{"unix_peers":[[7,"x"]],"rpcd":{}},"policy":{"bind_dirs":["/x"],"max_body_bytes":5}}"#,
        )
        .unwrap();
        assert_eq!(f.listen, Some(vec!["a".to_string()]));
        assert_eq!(
            (f.max_headers, f.no_splice, f.max_head_bytes),
            (Some(9), None, None)
        );
        let roles = f.roles.unwrap();
        let names: Vec<_> = roles
            .iter()
            .map(|(n, r)| (n.as_str(), r.classes.clone(), r.check_bodies))
            .collect();
        assert_eq!(
            names,
            [("a", vec![], None), ("b", vec!["logs".to_string()], Some(false))]
        );
        let auth = f.auth.unwrap();
        let peers = auth.unix_peers.unwrap();
        assert_eq!((peers[0].uid, peers[0].role.as_str()), (7, "x"));
        assert!(auth.rpcd.is_some_and(|r| r.enabled.is_none() && r.ubus.is_none()));
        let policy = f.policy.unwrap();
        assert_eq!(policy.bind_dirs, Some(vec!["/x".to_string()]));
        assert_eq!((policy.max_body_bytes, policy.allow_devices), (Some(5), None));
    }
}

//! Checks on the JSON bodies of the requests that can escape a container:
//! create, update, exec, volumes, services and plugin privileges.
//!
//! dockerd reads these bodies with Go's `encoding/json`: keys match
//! case-insensitively (with Unicode folding, so `ſ` is `s` and `K` is `k`),
//! `\u` escapes are decoded, duplicates are decoded in order, and objects
//! given twice are merged. Instead of re-implementing that merge, every
//! occurrence of a key is checked: whatever Go ends up keeping has been
//! looked at. Anything we cannot read is denied (fail closed).

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::route::BodyCheck;

/// A JSON value that keeps object keys in order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub enum GoJson {
    Null,
    Bool(bool),
    Number,
    String(String),
    Array(Vec<GoJson>),
    Object(Vec<(String, GoJson)>),
}

impl<'de> Deserialize<'de> for GoJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GoJson, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GoJson;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<GoJson, E> {
                Ok(GoJson::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<GoJson, E> {
                Ok(GoJson::Bool(b))
            }
            fn visit_i64<E>(self, _: i64) -> Result<GoJson, E> {
                Ok(GoJson::Number)
            }
            fn visit_u64<E>(self, _: u64) -> Result<GoJson, E> {
                Ok(GoJson::Number)
            }
            fn visit_f64<E>(self, _: f64) -> Result<GoJson, E> {
                Ok(GoJson::Number)
            }
            fn visit_str<E>(self, s: &str) -> Result<GoJson, E> {
                Ok(GoJson::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<GoJson, E> {
                Ok(GoJson::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GoJson, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element()? {
                    items.push(v);
                }
                Ok(GoJson::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GoJson, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, GoJson>()? {
                    entries.push((k, v));
                }
                Ok(GoJson::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Go's case folding for struct field names: ASCII case, plus the two
/// non-ASCII letters whose fold orbit reaches ASCII (KELVIN SIGN, LONG S).
pub fn fold_eq(key: &str, field: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212A}' => 'k',
        '\u{17F}' => 's',
        c => c.to_ascii_lowercase(),
    };
    key.chars().map(fold).eq(field.chars().map(fold))
}

/// All values of `field` in every object of `values`, in order.
fn field<'a>(values: &[&'a GoJson], name: &str) -> Vec<&'a GoJson> {
    let mut out = Vec::new();
    for v in values {
        if let GoJson::Object(entries) = v {
            out.extend(entries.iter().filter(|(k, _)| fold_eq(k, name)).map(|(_, v)| v));
        }
    }
    out
}

fn path<'a>(root: &'a GoJson, names: &[&str]) -> Vec<&'a GoJson> {
    let mut cur = vec![root];
    for name in names {
        cur = field(&cur, name);
    }
    cur
}

/// The policy's settings, global or overridden for a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Host directories that binds and bind-like volumes may reach.
    pub bind_dirs: Vec<PathBuf>,
    /// Capabilities `CapAdd` may name, upper case without `CAP_`.
    pub cap_add_allow: Vec<String>,
    pub allow_privileged: bool,
    pub allow_devices: bool,
    pub allow_host_namespaces: bool,
    pub allow_host_network: bool,
    pub allow_volumes_from: bool,
    pub allow_unconfined: bool,
    pub max_body_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            bind_dirs: Vec::new(),
            cap_add_allow: Vec::new(),
            allow_privileged: false,
            allow_devices: false,
            allow_host_namespaces: false,
            allow_host_network: false,
            allow_volumes_from: false,
            allow_unconfined: false,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Why a request was refused: the rule and the field that broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub rule: &'static str,
    pub field: String,
    pub message: String,
}

impl Denial {
    fn new(rule: &'static str, field: &str, message: impl Into<String>) -> Denial {
        Denial {
            rule,
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Resolves symlinks of an absolute, lexically clean host path.
pub type Resolver<'a> = &'a dyn Fn(&Path) -> PathBuf;

/// Checks a complete request body for `kind`.
pub fn check_body(
    kind: BodyCheck,
    content_type: Option<&[u8]>,
    body: &[u8],
    policy: &Policy,
    resolve: Resolver,
) -> Result<(), Denial> {
    check_content_type(content_type)?;
    if body.is_empty() {
        return Err(Denial::new("empty_body", "", "this request needs a JSON body"));
    }
    if body.len() > policy.max_body_bytes {
        return Err(Denial::new("body_size", "", "request body too large"));
    }
    let json: GoJson = serde_json::from_slice(body)
        .map_err(|e| Denial::new("invalid_json", "", format!("request body is not valid JSON: {e}")))?;
    let c = Checker { policy, resolve };
    match kind {
        BodyCheck::ContainerCreate => {
            // dockerd before API 1.44 also reads host settings from the top
            // level of the body (a deprecated embedded HostConfig).
            let mut hc = path(&json, &["HostConfig"]);
            hc.push(&json);
            c.host_config(&hc, "HostConfig")
        }
        BodyCheck::ContainerUpdate => c.devices(&[&json], ""),
        BodyCheck::ExecCreate => c.flag(
            &path(&json, &["Privileged"]),
            "Privileged",
            "exec_privileged",
            c.policy.allow_privileged,
        ),
        BodyCheck::VolumeCreate => c.volume_options(&path(&json, &["DriverOpts"]), "DriverOpts"),
        BodyCheck::Service => c.service(&json),
        BodyCheck::PluginPrivileges => c.plugin_privileges(&json),
    }
}

fn check_content_type(content_type: Option<&[u8]>) -> Result<(), Denial> {
    let Some(ct) = content_type else {
        return Ok(());
    };
    let media = ct.split(|&b| b == b';').next().unwrap_or(b"").trim_ascii();
    if media.is_empty() || media.eq_ignore_ascii_case(b"application/json") {
        Ok(())
    } else if media.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
        Err(Denial::new(
            "form_body",
            "Content-Type",
            "form-encoded bodies are not accepted",
        ))
    } else {
        Err(Denial::new(
            "content_type",
            "Content-Type",
            "request body must be JSON",
        ))
    }
}

struct Checker<'a> {
    policy: &'a Policy,
    resolve: Resolver<'a>,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn type_error(field: &str) -> Denial {
    Denial::new("invalid_type", field, format!("{field} has an unexpected type"))
}

/// Strings of a Go `[]string` or `strslice.StrSlice` (a string or a list).
fn strings<'a>(values: &[&'a GoJson], field_name: &str, allow_single: bool) -> Result<Vec<&'a str>, Denial> {
    let mut out = Vec::new();
    for v in values {
        match v {
            GoJson::Null => {}
            GoJson::String(s) if allow_single => out.push(s.as_str()),
            GoJson::Array(items) => {
                for item in items {
                    match item {
                        GoJson::String(s) => out.push(s.as_str()),
                        _ => return Err(type_error(field_name)),
                    }
                }
            }
            _ => return Err(type_error(field_name)),
        }
    }
    Ok(out)
}

fn non_empty(values: &[&GoJson], field_name: &str) -> Result<bool, Denial> {
    let mut any = false;
    for v in values {
        match v {
            GoJson::Null => {}
            GoJson::Array(items) => any |= !items.is_empty(),
            _ => return Err(type_error(field_name)),
        }
    }
    Ok(any)
}

impl Checker<'_> {
    fn flag(&self, values: &[&GoJson], name: &str, rule: &'static str, allowed: bool) -> Result<(), Denial> {
        for v in values {
            match v {
                GoJson::Bool(true) if !allowed => {
                    return Err(Denial::new(rule, name, format!("{name} is not allowed")))
                }
                GoJson::Bool(_) | GoJson::Null => {}
                _ => return Err(type_error(name)),
            }
        }
        Ok(())
    }

    fn host_config(&self, hc: &[&GoJson], prefix: &str) -> Result<(), Denial> {
        let p = self.policy;
        let f = |name: &str| field(hc, name);
        self.flag(
            &f("Privileged"),
            &join(prefix, "Privileged"),
            "privileged",
            p.allow_privileged,
        )?;
        self.cap_add(
            &strings(&f("CapAdd"), &join(prefix, "CapAdd"), true)?,
            &join(prefix, "CapAdd"),
        )?;
        self.devices(hc, prefix)?;
        for mode in ["PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"] {
            if !p.allow_host_namespaces && self.is_host(&f(mode), &join(prefix, mode))? {
                return Err(Denial::new(
                    "host_namespace",
                    &join(prefix, mode),
                    format!("{mode}=host is not allowed"),
                ));
            }
        }
        let net = join(prefix, "NetworkMode");
        if !p.allow_host_network && self.is_host(&f("NetworkMode"), &net)? {
            return Err(Denial::new(
                "host_network",
                &net,
                "NetworkMode=host is not allowed",
            ));
        }
        let binds = join(prefix, "Binds");
        for bind in strings(&f("Binds"), &binds, false)? {
            let source = bind.split(':').next().unwrap_or("");
            if source.starts_with('/') {
                self.host_path(source, &binds)?;
            }
        }
        self.mounts(&f("Mounts"), &join(prefix, "Mounts"))?;
        let vf = join(prefix, "VolumesFrom");
        if !p.allow_volumes_from && non_empty(&f("VolumesFrom"), &vf)? {
            return Err(Denial::new(
                "volumes_from",
                &vf,
                "VolumesFrom can reach host paths of other containers",
            ));
        }
        let so = join(prefix, "SecurityOpt");
        for opt in strings(&f("SecurityOpt"), &so, false)? {
            let lower = opt.to_ascii_lowercase();
            if !p.allow_unconfined
                && (lower.contains("unconfined")
                    || lower.contains("label=disable")
                    || lower.contains("label:disable"))
            {
                return Err(Denial::new(
                    "unconfined",
                    &so,
                    format!("security option {opt:?} is not allowed"),
                ));
            }
        }
        Ok(())
    }

    fn devices(&self, hc: &[&GoJson], prefix: &str) -> Result<(), Denial> {
        if self.policy.allow_devices {
            return Ok(());
        }
        for name in ["Devices", "DeviceRequests", "DeviceCgroupRules"] {
            let full = join(prefix, name);
            if non_empty(&field(hc, name), &full)? {
                return Err(Denial::new("devices", &full, format!("{name} is not allowed")));
            }
        }
        Ok(())
    }

    fn is_host(&self, values: &[&GoJson], name: &str) -> Result<bool, Denial> {
        let mut host = false;
        for v in values {
            match v {
                GoJson::Null => {}
                GoJson::String(s) => host |= s.trim().eq_ignore_ascii_case("host"),
                _ => return Err(type_error(name)),
            }
        }
        Ok(host)
    }

    fn cap_add(&self, caps: &[&str], name: &str) -> Result<(), Denial> {
        for cap in caps {
            let upper = cap.trim().to_ascii_uppercase();
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
            if !self.policy.cap_add_allow.iter().any(|a| a == bare) {
                return Err(Denial::new(
                    "cap_add",
                    name,
                    format!("capability {cap} is not allowed"),
                ));
            }
        }
        Ok(())
    }

    /// Go decodes a repeated array into the elements already there, so
    /// mount `i` is every occurrence's element `i` taken together.
    fn mounts(&self, values: &[&GoJson], name: &str) -> Result<(), Denial> {
        let mut by_index: Vec<Vec<&GoJson>> = Vec::new();
        for v in values {
            match v {
                GoJson::Null => {}
                GoJson::Array(items) => {
                    for (i, m) in items.iter().enumerate() {
                        if by_index.len() <= i {
                            by_index.push(Vec::new());
                        }
                        by_index[i].push(m);
                    }
                }
                _ => return Err(type_error(name)),
            }
        }
        for m in &by_index {
            let kinds = strings(&field(m, "Type"), &join(name, "Type"), true)?;
            for kind in kinds.iter().map(|k| k.to_ascii_lowercase()) {
                match kind.as_str() {
                    "bind" => {
                        for source in strings(&field(m, "Source"), &join(name, "Source"), true)? {
                            self.host_path(source, &join(name, "Source"))?;
                        }
                    }
                    "volume" => {
                        let opts = field(&field(&field(m, "VolumeOptions"), "DriverConfig"), "Options");
                        self.volume_options(&opts, &join(name, "VolumeOptions.DriverConfig.Options"))?;
                    }
                    "tmpfs" | "cluster" => {}
                    other => {
                        return Err(Denial::new(
                            "mount_type",
                            &join(name, "Type"),
                            format!("mount type {other:?} is not allowed"),
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    /// The local driver's `o=bind` with `device=` is a host bind in disguise.
    fn volume_options(&self, values: &[&GoJson], name: &str) -> Result<(), Denial> {
        let mut binds = false;
        for o in strings(&field(values, "o"), &join(name, "o"), true)? {
            binds |= o.split(',').any(|t| matches!(t.trim(), "bind" | "rbind"));
        }
        for device in strings(&field(values, "device"), &join(name, "device"), true)? {
            if binds || device.starts_with('/') {
                self.host_path(device, &join(name, "device"))?;
            }
        }
        Ok(())
    }

    fn service(&self, json: &GoJson) -> Result<(), Denial> {
        let spec = path(json, &["TaskTemplate", "ContainerSpec"]);
        let prefix = "TaskTemplate.ContainerSpec";
        self.mounts(&field(&spec, "Mounts"), &join(prefix, "Mounts"))?;
        self.cap_add(
            &strings(
                &field(&spec, "CapabilityAdd"),
                &join(prefix, "CapabilityAdd"),
                false,
            )?,
            &join(prefix, "CapabilityAdd"),
        )?;
        let privileges = field(&spec, "Privileges");
        for (sub, bad) in [("Seccomp", "unconfined"), ("AppArmor", "disabled")] {
            let modes = field(&field(&privileges, sub), "Mode");
            let name = format!("{prefix}.Privileges.{sub}.Mode");
            for m in strings(&modes, &name, true)? {
                if !self.policy.allow_unconfined && m.eq_ignore_ascii_case(bad) {
                    return Err(Denial::new(
                        "unconfined",
                        &name,
                        format!("{sub} mode {m:?} is not allowed"),
                    ));
                }
            }
        }
        for net in path(json, &["TaskTemplate", "Networks"]) {
            if let GoJson::Array(items) = net {
                for n in items {
                    let target = field(&[n], "Target");
                    if !self.policy.allow_host_network
                        && self.is_host(&target, "TaskTemplate.Networks.Target")?
                    {
                        return Err(Denial::new(
                            "host_network",
                            "TaskTemplate.Networks.Target",
                            "the host network is not allowed",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn plugin_privileges(&self, json: &GoJson) -> Result<(), Denial> {
        let GoJson::Array(items) = json else {
            return Err(type_error("privileges"));
        };
        for item in items {
            let item = [item];
            let names = strings(&field(&item, "Name"), "Name", true)?;
            let values = strings(&field(&item, "Value"), "Value", false)?;
            for name in names {
                match name {
                    "network" => {
                        if !self.policy.allow_host_network && values.contains(&"host") {
                            return Err(Denial::new(
                                "host_network",
                                "network",
                                "plugin asks for the host network",
                            ));
                        }
                    }
                    "mount" => {
                        for v in &values {
                            self.host_path(v, "mount")?;
                        }
                    }
                    "capabilities" => self.cap_add(&values, "capabilities")?,
                    "device" | "allow-all-devices" if !self.policy.allow_devices => {
                        return Err(Denial::new("devices", name, "plugin asks for devices"))
                    }
                    "host-pid" | "host-ipc" if !self.policy.allow_host_namespaces => {
                        return Err(Denial::new(
                            "host_namespace",
                            name,
                            "plugin asks for a host namespace",
                        ))
                    }
                    "device" | "allow-all-devices" | "host-pid" | "host-ipc" => {}
                    other => {
                        return Err(Denial::new(
                            "plugin_privilege",
                            other,
                            format!("plugin privilege {other:?} is not allowed"),
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    /// A host path must lie, after symlinks, inside one of `bind_dirs`.
    fn host_path(&self, raw: &str, name: &str) -> Result<(), Denial> {
        let deny = || {
            Denial::new(
                "host_path",
                name,
                format!("host path {raw:?} is outside the allowed directories"),
            )
        };
        let clean = clean_absolute(raw).ok_or_else(deny)?;
        let resolved = (self.resolve)(&clean);
        let inside = |p: &Path| self.policy.bind_dirs.iter().any(|d| p.starts_with(d));
        if inside(&clean) && inside(&resolved) {
            Ok(())
        } else {
            Err(deny())
        }
    }
}

/// An absolute path without `.`/`..` and with repeated slashes collapsed;
/// `None` when it is relative or climbs.
pub fn clean_absolute(raw: &str) -> Option<PathBuf> {
    let p = Path::new(raw);
    if !p.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => out.push(s),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Resolves symlinks in the longest existing prefix of `path`, as the
/// kernel will when dockerd mounts it (missing tails are created as-is).
pub fn resolve_on_host(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut tail = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            out.extend(tail.iter().rev());
            return out;
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            bind_dirs: vec![PathBuf::from("/opt/docker")],
            cap_add_allow: vec!["NET_ADMIN".into()],
            ..Policy::default()
        }
    }

    fn same(p: &Path) -> PathBuf {
        p.to_path_buf()
    }

    fn check(kind: BodyCheck, body: &str) -> Result<(), Denial> {
        check_body(kind, Some(b"application/json"), body.as_bytes(), &policy(), &same)
    }

    fn rule(kind: BodyCheck, body: &str) -> &'static str {
        match check(kind, body) {
            Err(d) => d.rule,
            Ok(()) => "allowed",
        }
    }

    use BodyCheck::*;

    #[test]
    fn plain_create_is_allowed() {
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"Image":"busybox","Cmd":["sh"],"HostConfig":{"Binds":["data:/data","/opt/docker/app:/app:ro"],"CapAdd":["NET_ADMIN"],"NetworkMode":"default"}}"#
            ),
            "allowed"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"Image":"busybox","HostConfig":null}"#),
            "allowed"
        );
    }

    #[test]
    fn privileged_in_every_spelling() {
        for body in [
            r#"{"HostConfig":{"Privileged":true}}"#,
            r#"{"hostconfig":{"privileged":true}}"#,
            r#"{"HostConfig":{"\u0050rivileged":true}}"#,
            r#"{"HoſtConfig":{"Privileged":true}}"#,
            r#"{"HostConfig":{"Privileged":true,"Privileged":false}}"#,
            r#"{"HostConfig":{"Privileged":false},"HostConfig":{"Privileged":true}}"#,
            r#"{"HostConfig":{"Privileged":true},"HostConfig":null}"#,
        ] {
            assert_eq!(rule(ContainerCreate, body), "privileged", "{body}");
        }
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"Privileged":"true"}}"#),
            "invalid_type"
        );
    }

    #[test]
    fn capabilities() {
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"CapAdd":["SYS_ADMIN"]}}"#),
            "cap_add"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"CapAdd":"CAP_SYS_ADMIN"}}"#),
            "cap_add"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"CapAdd":["ALL"]}}"#),
            "cap_add"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"CapAdd":["cap_net_admin"]}}"#),
            "allowed"
        );
    }

    #[test]
    fn devices_and_namespaces() {
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"Devices":[{"PathOnHost":"/dev/sda"}]}}"#
            ),
            "devices"
        );
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"DeviceRequests":[{"Count":-1}]}}"#
            ),
            "devices"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"Devices":[]}}"#),
            "allowed"
        );
        assert_eq!(
            rule(ContainerUpdate, r#"{"Devices":[{"PathOnHost":"/dev/mem"}]}"#),
            "devices"
        );
        for mode in ["PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"] {
            let body = format!(r#"{{"HostConfig":{{"{mode}":"host"}}}}"#);
            assert_eq!(rule(ContainerCreate, &body), "host_namespace");
        }
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"PidMode":"container:x"}}"#),
            "allowed"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"NetworkMode":"host"}}"#),
            "host_network"
        );
    }

    #[test]
    fn host_paths() {
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"Binds":["/:/host"]}}"#),
            "host_path"
        );
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"Binds":["/opt/docker/../../etc:/x"]}}"#
            ),
            "host_path"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"Binds":["/opt/dockerx:/x"]}}"#),
            "host_path"
        );
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"Binds":["//opt/docker/a:/x"]}}"#
            ),
            "allowed"
        );
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/etc","Target":"/x"}]}}"#
            ),
            "host_path"
        );
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"Mounts":[{"type":"BIND","source":"/etc","target":"/x"}]}}"#
            ),
            "host_path"
        );
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"Mounts":[{"Type":"volume","Source":"v","VolumeOptions":{"DriverConfig":{"Options":{"o":"bind","device":"/"}}}}]}}"#
            ),
            "host_path"
        );
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"Mounts":[{"Type":"npipe","Source":"x"}]}}"#
            ),
            "mount_type"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"VolumesFrom":["other"]}}"#),
            "volumes_from"
        );
        assert_eq!(
            rule(
                VolumeCreate,
                r#"{"Name":"v","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/"}}"#
            ),
            "host_path"
        );
        assert_eq!(
            rule(
                VolumeCreate,
                r#"{"Name":"v","DriverOpts":{"o":"rw,rbind","device":"/opt/docker/v"}}"#
            ),
            "allowed"
        );
        assert_eq!(rule(VolumeCreate, r#"{"Name":"v"}"#), "allowed");
    }

    #[test]
    fn go_decoding_quirks() {
        // A repeated array is decoded into the elements already there.
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"Mounts":[{"Source":"/etc"}],"Mounts":[{"Type":"bind"}]}}"#
            ),
            "host_path"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"Image":"x","Binds":["/:/host"]}"#),
            "host_path"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"Image":"x","Privileged":true}"#),
            "privileged"
        );
    }

    #[test]
    fn symlinks_are_followed() {
        let escape = |p: &Path| {
            if p.starts_with("/opt/docker/link") {
                PathBuf::from("/etc")
            } else {
                p.to_path_buf()
            }
        };
        let body = br#"{"HostConfig":{"Binds":["/opt/docker/link:/x"]}}"#;
        let r = check_body(ContainerCreate, None, body, &policy(), &escape);
        assert_eq!(r.map_err(|d| d.rule), Err("host_path"));
    }

    #[test]
    fn exec_services_plugins() {
        assert_eq!(
            rule(ExecCreate, r#"{"Cmd":["sh"],"privileged":true}"#),
            "exec_privileged"
        );
        assert_eq!(rule(ExecCreate, r#"{"Cmd":["sh"]}"#), "allowed");
        assert_eq!(
            rule(
                Service,
                r#"{"TaskTemplate":{"ContainerSpec":{"Mounts":[{"Type":"bind","Source":"/"}]}}}"#
            ),
            "host_path"
        );
        assert_eq!(
            rule(Service, r#"{"TaskTemplate":{"Networks":[{"Target":"host"}]}}"#),
            "host_network"
        );
        assert_eq!(
            rule(
                Service,
                r#"{"TaskTemplate":{"ContainerSpec":{"Privileges":{"Seccomp":{"Mode":"unconfined"}}}}}"#
            ),
            "unconfined"
        );
        assert_eq!(
            rule(PluginPrivileges, r#"[{"Name":"network","Value":["host"]}]"#),
            "host_network"
        );
        assert_eq!(
            rule(PluginPrivileges, r#"[{"Name":"mount","Value":["/var/lib"]}]"#),
            "host_path"
        );
        assert_eq!(
            rule(PluginPrivileges, r#"[{"Name":"network","Value":["bridge"]}]"#),
            "allowed"
        );
        assert_eq!(rule(PluginPrivileges, r#"{}"#), "invalid_type");
    }

    #[test]
    fn fail_closed() {
        assert_eq!(rule(ContainerCreate, ""), "empty_body");
        assert_eq!(rule(ContainerCreate, "{"), "invalid_json");
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{}} {"HostConfig":{"Privileged":true}}"#
            ),
            "invalid_json"
        );
        let big = format!(r#"{{"Image":"{}"}}"#, "a".repeat(2 << 20));
        assert_eq!(rule(ContainerCreate, &big), "body_size");
        let form = check_body(
            ContainerCreate,
            Some(b"application/x-www-form-urlencoded"),
            b"a=b",
            &policy(),
            &same,
        );
        assert_eq!(form.map_err(|d| d.rule), Err("form_body"));
        let deep = "[".repeat(500);
        assert_eq!(rule(ContainerCreate, &deep), "invalid_json");
    }

    #[test]
    fn folding_matches_go() {
        assert!(fold_eq("HOSTCONFIG", "HostConfig"));
        assert!(fold_eq("\u{212A}ey", "key"));
        assert!(!fold_eq("Privıleged", "Privileged"));
    }
}

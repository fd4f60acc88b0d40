//! Checks on what a checked role (operator, and custom roles with body
//! checks) sends: the JSON bodies that create or change containers, execs,
//! volumes and networks, and the build's query parameters.
//!
//! It is an allow-list (`table`): every field has a rule, and a field with
//! none passes only at Go's zero value. dockerd reads bodies with Go's
//! `encoding/json` (`json`): keys match case-insensitively, `\u` escapes are
//! decoded, and repeated keys are decoded in order into one struct. Instead
//! of re-implementing that merge, every occurrence of a key is checked:
//! whatever Go ends up keeping has been looked at. Anything we cannot read
//! is denied (fail closed).

mod json;
mod query;
mod rules;
pub mod table;

use std::path::{Component, Path, PathBuf};

pub use json::{fold_eq, GoJson};
pub use query::{check_build_query, query_pairs};

use crate::access::route::BodyCheck;
use json::{elements, entries};
use table::{Field, Rule, Table};

/// A rule over the values of one field (every occurrence, merged).
pub type Check = fn(&Checker, &[&GoJson], &str) -> Result<(), Denial>;
/// A rule over one map key.
pub type KeyCheck = fn(&Checker, &str, &str) -> Result<(), Denial>;

/// The policy's settings, global or overridden for a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Host directories whose direct entries binds may name.
    pub bind_dirs: Vec<PathBuf>,
    /// Capabilities `CapAdd` may name, upper case without `CAP_`.
    pub cap_add_allow: Vec<String>,
    /// Filesystem types the local volume driver may mount (`DriverOpts.type`).
    pub volume_types: Vec<String>,
    /// AppArmor profiles `SecurityOpt` may name.
    pub apparmor_profiles: Vec<String>,
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
            volume_types: Vec::new(),
            apparmor_profiles: Vec::new(),
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
    pub fn new(rule: &'static str, field: &str, message: impl Into<String>) -> Denial {
        Denial {
            rule,
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Binds and mounts one request may carry: each costs a `lstat`.
const MAX_MOUNTS: usize = 256;

/// JSON values one body may hold: a real create body has a few hundred,
/// and building the tree of a megabyte of `[[[]]]` would hold the loop.
const MAX_JSON_VALUES: usize = 10_000;

/// Keys in one object the policy walks as a struct: the largest Docker
/// struct has about a hundred fields, and every key is looked up in them.
const MAX_STRUCT_KEYS: usize = 256;

/// Checks a complete request body for `kind`.
pub fn check_body(
    kind: BodyCheck,
    content_type: Option<&[u8]>,
    body: &[u8],
    policy: &Policy,
) -> Result<(), Denial> {
    check_content_type(content_type)?;
    if body.is_empty() {
        // dockerd commits with the container's own config when none is sent.
        if kind == BodyCheck::Commit {
            return Ok(());
        }
        return Err(Denial::new("empty_body", "", "this request needs a JSON body"));
    }
    if body.len() > policy.max_body_bytes {
        return Err(Denial::new("body_size", "", "request body too large"));
    }
    if json::values_bound(body) > MAX_JSON_VALUES {
        return Err(Denial::new(
            "too_complex",
            "",
            format!("request body has more than {MAX_JSON_VALUES} JSON values"),
        ));
    }
    let json: GoJson = serde_json::from_slice(body)
        .map_err(|e| Denial::new("invalid_json", "", format!("request body is not valid JSON: {e}")))?;
    let c = Checker::new(policy);
    if kind == BodyCheck::PluginPrivileges {
        return rules::plugin_privileges(&c, &json);
    }
    c.fields(&[&json], table::tables(kind), "")
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

/// Walks a body through the allow-list tables.
pub struct Checker<'a> {
    pub policy: &'a Policy,
    /// Binds and mounts seen so far in this body.
    mounts: std::cell::Cell<usize>,
}

pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

pub fn type_error(field: &str) -> Denial {
    Denial::new("invalid_type", field, format!("{field} has an unexpected type"))
}

fn not_allowed(field: &str) -> Denial {
    Denial::new(
        "not_allowed",
        field,
        format!("{field} is not on the policy's allow-list and must be left unset"),
    )
}

impl<'a> Checker<'a> {
    fn new(policy: &'a Policy) -> Checker<'a> {
        Checker {
            policy,
            mounts: std::cell::Cell::new(0),
        }
    }

    /// Checks `values`, every occurrence of one struct, against its tables:
    /// one pass files each key under its field, then each field's rule runs
    /// once over everything filed there.
    fn fields(&self, values: &[&GoJson], tables: &[&Table], prefix: &str) -> Result<(), Denial> {
        let all: Vec<&Field> = tables.iter().flat_map(|t| t.fields).collect();
        let mut filed: Vec<Vec<&GoJson>> = vec![Vec::new(); all.len()];
        for v in values {
            let entries = match v {
                GoJson::Null => continue,
                GoJson::Object(entries) => entries,
                _ => return Err(type_error(if prefix.is_empty() { "body" } else { prefix })),
            };
            if entries.len() > MAX_STRUCT_KEYS {
                return Err(Denial::new(
                    "too_complex",
                    prefix,
                    format!("more than {MAX_STRUCT_KEYS} keys in one object"),
                ));
            }
            for (key, value) in entries {
                let mut buf = [0; 64];
                let found = json::fold_key(key, &mut buf)
                    .and_then(|k| all.iter().position(|f| f.name.as_bytes().eq_ignore_ascii_case(k)));
                match found {
                    Some(i) => filed[i].push(value),
                    None if value.is_zero() => {}
                    None => return Err(not_allowed(&join(prefix, key))),
                }
            }
        }
        for (f, found) in all.iter().zip(&filed) {
            if !found.is_empty() {
                self.rule(&f.rule, found, &join(prefix, f.name))?;
            }
        }
        for t in tables {
            if let Some(then) = t.then {
                then(self, values, prefix)?;
            }
        }
        Ok(())
    }

    fn rule(&self, rule: &Rule, values: &[&GoJson], name: &str) -> Result<(), Denial> {
        match rule {
            Rule::Free => Ok(()),
            Rule::Zero if values.iter().all(|v| v.is_zero()) => Ok(()),
            Rule::Zero => Err(not_allowed(name)),
            Rule::Struct(tables) => self.fields(values, tables, name),
            Rule::List(table) => {
                let by_index = elements(values).ok_or_else(|| type_error(name))?;
                for (i, element) in by_index.iter().enumerate() {
                    self.fields(element, &[table], &format!("{name}[{i}]"))?;
                }
                Ok(())
            }
            Rule::Map(table, key_rule) => {
                for (key, value) in entries(values).ok_or_else(|| type_error(name))? {
                    let entry = format!("{name}.{key}");
                    key_rule(self, key, &entry)?;
                    self.fields(&[value], &[table], &entry)?;
                }
                Ok(())
            }
            Rule::Check(check) => check(self, values, name),
        }
    }

    /// Counts one bind or mount against `MAX_MOUNTS`.
    fn count_mount(&self, name: &str) -> Result<(), Denial> {
        self.mounts.set(self.mounts.get() + 1);
        if self.mounts.get() > MAX_MOUNTS {
            return Err(Denial::new(
                "too_many_mounts",
                name,
                format!("more than {MAX_MOUNTS} binds and mounts in one request"),
            ));
        }
        Ok(())
    }

    /// A host path must be an existing entry directly inside one of
    /// `bind_dirs`, and not a symbolic link.
    ///
    /// Only direct entries: no container can then change any component of
    /// the path between this check and the mount at start, because no
    /// container may bind a bind dir itself or anything above it. A deeper
    /// path could be swapped for a symlink by a container that binds one of
    /// its parents (the symlink race), whatever was checked here.
    fn host_path(&self, raw: &str, name: &str) -> Result<(), Denial> {
        self.count_mount(name)?;
        let deny = |why: String| Denial::new("host_path", name, format!("host path {raw:?} {why}"));
        if raw.len() > MAX_HOST_PATH {
            return Err(deny("is too long".into()));
        }
        let clean = clean_absolute(raw).ok_or_else(|| deny("is not a clean absolute path".into()))?;
        let inside = self
            .policy
            .bind_dirs
            .iter()
            .any(|d| clean.parent() == Some(d.as_path()));
        if !inside {
            return Err(deny(
                "is not an entry directly inside an allowed bind directory".into(),
            ));
        }
        match std::fs::symlink_metadata(&clean) {
            Ok(meta) if meta.file_type().is_symlink() => Err(deny("is a symbolic link".into())),
            Ok(_) => Ok(()),
            // Missing, unreadable (EACCES) or anything else: not checked, not allowed.
            Err(e) => Err(deny(format!("cannot be checked ({e})"))),
        }
    }
}

/// Longer host paths are refused before any lookup.
const MAX_HOST_PATH: usize = 4096;

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

#[cfg(test)]
mod tests {
    use super::*;
    use BodyCheck::*;

    /// A bind dir on disk with an entry `app`, a file `f` and a symlink `link`.
    fn bind_dir() -> PathBuf {
        static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        DIR.get_or_init(|| {
            // One fixed place, made afresh by each run, so runs leave nothing behind.
            let dir = std::env::temp_dir().join("dockermand-policy-unit");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("app/sub")).unwrap();
            std::fs::write(dir.join("f"), b"x").unwrap();
            std::os::unix::fs::symlink("/", dir.join("link")).unwrap();
            dir
        })
        .clone()
    }

    fn policy() -> Policy {
        Policy {
            bind_dirs: vec![bind_dir()],
            cap_add_allow: vec!["NET_ADMIN".into()],
            ..Policy::default()
        }
    }

    fn rule_with(kind: BodyCheck, body: &str, p: &Policy) -> &'static str {
        match check_body(kind, Some(b"application/json"), body.as_bytes(), p) {
            Err(d) => d.rule,
            Ok(()) => "allowed",
        }
    }

    fn rule(kind: BodyCheck, body: &str) -> &'static str {
        rule_with(kind, body, &policy())
    }

    fn bind(source: &str) -> String {
        format!(r#"{{"HostConfig":{{"Binds":["{source}:/x"]}}}}"#)
    }

    #[test]
    fn what_clients_send_passes() {
        // The shape of docker CLI v28's `run` body: many fields at zero.
        let cli = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"Tty":false,
            "Env":["A=1"],"Cmd":["sh"],"Image":"busybox","Volumes":{},"Entrypoint":null,
            "OnBuild":null,"Labels":{"com.docker.compose.project":"p"},
            "HostConfig":{"Binds":["data:/data"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},
            "NetworkMode":"default","PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},
            "RestartPolicy":{"Name":"unless-stopped","MaximumRetryCount":0},"AutoRemove":false,
            "VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[24,80],"CapAdd":null,"CapDrop":null,
            "CgroupnsMode":"","Dns":[],"IpcMode":"","Cgroup":"","OomScoreAdj":0,"PidMode":"",
            "Privileged":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,
            "Isolation":"","CpuShares":0,"Memory":268435456,"NanoCpus":500000000,"CgroupParent":"",
            "Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MaskedPaths":null,
            "ReadonlyPaths":null,"Mounts":[{"Type":"volume","Source":"v","Target":"/v"}]},
            "NetworkingConfig":{"EndpointsConfig":{"mynet":{"Aliases":["web"]}}}}"#;
        assert_eq!(rule(ContainerCreate, cli), "allowed");
        assert_eq!(
            rule(ContainerCreate, r#"{"Image":"busybox","HostConfig":null}"#),
            "allowed"
        );
        assert_eq!(
            rule(ExecCreate, r#"{"Cmd":["sh"],"Tty":true,"ConsoleSize":[24,80]}"#),
            "allowed"
        );
        assert_eq!(
            rule(
                ContainerUpdate,
                r#"{"Memory":1,"RestartPolicy":{"Name":"always"}}"#
            ),
            "allowed"
        );
        assert_eq!(
            rule(
                VolumeCreate,
                r#"{"Name":"v","Driver":"local","DriverOpts":{},"Labels":{}}"#
            ),
            "allowed"
        );
        assert_eq!(
            rule(
                NetworkCreate,
                r#"{"Name":"n","Driver":"bridge","IPAM":{"Driver":"default","Config":[{"Subnet":"10.9.0.0/24"}]}}"#
            ),
            "allowed"
        );
        assert_eq!(rule(Commit, ""), "allowed");
    }

    #[test]
    fn unknown_fields_pass_only_at_zero() {
        assert_eq!(
            rule(ContainerCreate, r#"{"FutureField":{"a":"","b":[]}}"#),
            "allowed"
        );
        let denied = check_body(
            ContainerCreate,
            None,
            br#"{"HostConfig":{"FutureField":1}}"#,
            &policy(),
        );
        let d = denied.unwrap_err();
        assert_eq!(
            (d.rule, d.field.as_str()),
            ("not_allowed", "HostConfig.FutureField")
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"CgroupParent":"/"}}"#),
            "not_allowed"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"Annotations":{"a":"b"}}}"#),
            "not_allowed"
        );
        assert_eq!(rule(ExecCreate, r#"{"Cmd":["sh"],"Future":true}"#), "not_allowed");
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
            r#"{"Image":"x","Privileged":true}"#,
        ] {
            assert_eq!(rule(ContainerCreate, body), "privileged", "{body}");
        }
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"Privileged":"true"}}"#),
            "invalid_type"
        );
        assert_eq!(
            rule(ExecCreate, r#"{"Cmd":["sh"],"privileged":true}"#),
            "privileged"
        );
    }

    #[test]
    fn system_paths_and_security_options() {
        for body in [
            r#"{"HostConfig":{"MaskedPaths":[]}}"#,
            r#"{"HostConfig":{"ReadonlyPaths":[]}}"#,
        ] {
            assert_eq!(rule(ContainerCreate, body), "system_paths");
        }
        for opt in [
            "seccomp=unconfined",
            r#"seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"#,
            "label=disable",
            "label:type:spc_t",
            "disable",
            "apparmor=unconfined",
            "systempaths=unconfined",
            "writable-cgroups=true",
        ] {
            let body = format!(r#"{{"HostConfig":{{"SecurityOpt":["{opt}"]}}}}"#);
            assert_eq!(rule(ContainerCreate, &body), "security_opt", "{opt}");
        }
        for opt in [
            "no-new-privileges",
            "no-new-privileges:true",
            "no-new-privileges=false",
        ] {
            let body = format!(r#"{{"HostConfig":{{"SecurityOpt":["{opt}"]}}}}"#);
            assert_eq!(rule(ContainerCreate, &body), "allowed", "{opt}");
        }
        let named = Policy {
            apparmor_profiles: vec!["docker-default".into()],
            ..policy()
        };
        let body = r#"{"HostConfig":{"SecurityOpt":["apparmor=docker-default"]}}"#;
        assert_eq!(rule_with(ContainerCreate, body, &named), "allowed");
        assert_eq!(rule(ContainerCreate, body), "security_opt");
    }

    #[test]
    fn namespaces_and_networks() {
        for mode in ["PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"] {
            let host = format!(r#"{{"HostConfig":{{"{mode}":"host"}}}}"#);
            assert_eq!(rule(ContainerCreate, &host), "host_namespace", "{mode}");
            let join = format!(r#"{{"HostConfig":{{"{mode}":"container:x"}}}}"#);
            assert_eq!(rule(ContainerCreate, &join), "namespace_join", "{mode}");
        }
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"IpcMode":"shareable"}}"#),
            "allowed"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"NetworkMode":"host"}}"#),
            "host_network"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"NetworkMode":"container:x"}}"#),
            "namespace_join"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"NetworkMode":"3f2a"}}"#),
            "network_id"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"NetworkMode":"my-net"}}"#),
            "allowed"
        );
        let endpoint = r#"{"NetworkingConfig":{"EndpointsConfig":{"host":{}}}}"#;
        assert_eq!(rule(ContainerCreate, endpoint), "host_network");
        let endpoint = r#"{"NetworkingConfig":{"EndpointsConfig":{"n":{"DriverOpts":{"a":"b"}}}}}"#;
        assert_eq!(rule(ContainerCreate, endpoint), "not_allowed");
        assert_eq!(
            rule(
                NetworkConnect,
                r#"{"Container":"x","EndpointConfig":{"NetworkID":"abc"}}"#
            ),
            "network_id"
        );
        assert_eq!(
            rule(NetworkCreate, r#"{"Name":"n","Driver":"macvlan"}"#),
            "network_driver"
        );
        let lan = r#"{"Name":"n","Options":{"com.docker.network.bridge.name":"br-lan"}}"#;
        assert_eq!(rule(NetworkCreate, lan), "network_options");
        assert_eq!(
            rule(NetworkCreate, r#"{"Name":"n","ConfigFrom":{"Network":"x"}}"#),
            "not_allowed"
        );
    }

    #[test]
    fn devices_caps_sysctls_runtime() {
        let body = r#"{"HostConfig":{"Devices":[{"PathOnHost":"/dev/sda"}]}}"#;
        assert_eq!(rule(ContainerCreate, body), "devices");
        assert_eq!(
            rule(ContainerUpdate, r#"{"DeviceCgroupRules":["a *:* rwm"]}"#),
            "devices"
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
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"Sysctls":{"kernel.core_pattern":"|x"}}}"#
            ),
            "sysctls"
        );
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"Sysctls":{"net.ipv4.ip_forward":"1"}}}"#
            ),
            "allowed"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"Runtime":"kata"}}"#),
            "runtime"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"OomScoreAdj":-1000}}"#),
            "oom_score_adj"
        );
        assert_eq!(
            rule(
                ContainerCreate,
                r#"{"HostConfig":{"LogConfig":{"Type":"fluentd"}}}"#
            ),
            "log_driver"
        );
        let syslog = r#"{"HostConfig":{"LogConfig":{"Type":"syslog","Config":{"syslog-address":"unix:///run/x.sock"}}}}"#;
        assert_eq!(rule(ContainerCreate, syslog), "log_driver");
        let default_driver =
            r#"{"HostConfig":{"LogConfig":{"Config":{"syslog-address":"unix:///run/x.sock"}}}}"#;
        assert_eq!(rule(ContainerCreate, default_driver), "log_driver");
        let local = r#"{"HostConfig":{"LogConfig":{"Type":"local","Config":{"max-size":"10m"}}}}"#;
        assert_eq!(rule(ContainerCreate, local), "allowed");
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"VolumesFrom":["other"]}}"#),
            "volumes_from"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"VolumeDriver":"sshfs"}}"#),
            "volume_driver"
        );
    }

    #[test]
    fn host_paths_are_direct_entries_that_exist() {
        let dir = bind_dir();
        let d = dir.display();
        assert_eq!(rule(ContainerCreate, &bind(&format!("{d}/app"))), "allowed");
        assert_eq!(rule(ContainerCreate, &bind(&format!("{d}/f"))), "allowed");
        assert_eq!(rule(ContainerCreate, &bind(&format!("/{d}//app"))), "allowed");
        for bad in [
            "/".to_string(),
            format!("{d}"),
            format!("{d}/app/sub"),
            format!("{d}/link"),
            format!("{d}/missing"),
            format!("{d}/../etc"),
            format!("{d}x"),
            format!("{d}/{}", "a".repeat(5000)),
        ] {
            assert_eq!(rule(ContainerCreate, &bind(&bad)), "host_path", "{bad}");
        }
        assert_eq!(
            rule(
                ContainerCreate,
                &format!(r#"{{"HostConfig":{{"Binds":["{d}/app:/x:rshared"]}}}}"#)
            ),
            "bind_mode"
        );
        assert_eq!(
            rule(ContainerCreate, r#"{"HostConfig":{"Binds":["../x:/x"]}}"#),
            "bind_source"
        );
        let mount = |m: &str| format!(r#"{{"HostConfig":{{"Mounts":[{m}]}}}}"#);
        assert_eq!(
            rule(
                ContainerCreate,
                &mount(r#"{"Type":"bind","Source":"/etc","Target":"/x"}"#)
            ),
            "host_path"
        );
        let app = format!(r#"{{"Type":"bind","Source":"{d}/app","Target":"/x"}}"#);
        assert_eq!(rule(ContainerCreate, &mount(&app)), "allowed");
        let create =
            format!(r#"{{"Type":"bind","Source":"{d}/app","BindOptions":{{"CreateMountpoint":true}}}}"#);
        assert_eq!(rule(ContainerCreate, &mount(&create)), "not_allowed");
        let shared =
            format!(r#"{{"Type":"bind","Source":"{d}/app","BindOptions":{{"Propagation":"rshared"}}}}"#);
        assert_eq!(rule(ContainerCreate, &mount(&shared)), "propagation");
        assert_eq!(
            rule(ContainerCreate, &mount(r#"{"Type":"BIND","Source":"/etc"}"#)),
            "mount_type"
        );
        assert_eq!(
            rule(ContainerCreate, &mount(r#"{"Type":"image","Source":"busybox"}"#)),
            "mount_type"
        );
        assert_eq!(
            rule(ContainerCreate, &mount(r#"{"Source":"/etc"}"#)),
            "mount_type"
        );
        // Go merges a repeated array element by element.
        let merged = r#"{"HostConfig":{"Mounts":[{"Source":"/etc"}],"Mounts":[{"Type":"bind"}]}}"#;
        assert_eq!(rule(ContainerCreate, merged), "host_path");
        let many: Vec<String> = (0..300).map(|i| format!("\"v{i}:/v{i}\"")).collect();
        let body = format!(r#"{{"HostConfig":{{"Binds":[{}]}}}}"#, many.join(","));
        assert_eq!(rule(ContainerCreate, &body), "too_many_mounts");
    }

    #[test]
    fn volume_options_need_a_listed_type() {
        for opts in [
            r#"{"type":"proc","device":"proc"}"#,
            r#"{"type":"ext4","device":"../../dev/vda"}"#,
            r#"{"type":"overlay","o":"lowerdir=/etc,upperdir=/u,workdir=/w"}"#,
            r#"{"type":"none","o":"bind","device":"/"}"#,
            r#"{"o":""}"#,
        ] {
            let body = format!(r#"{{"Name":"v","DriverOpts":{opts}}}"#);
            assert_eq!(rule(VolumeCreate, &body), "volume_options", "{opts}");
            let mount = format!(
                r#"{{"HostConfig":{{"Mounts":[{{"Type":"volume","Source":"v","VolumeOptions":{{"DriverConfig":{{"Options":{opts}}}}}}}]}}}}"#
            );
            assert_eq!(rule(ContainerCreate, &mount), "volume_options", "{opts}");
        }
        let tmpfs = Policy {
            volume_types: vec!["tmpfs".into()],
            ..policy()
        };
        let ok = r#"{"Name":"v","DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=10m"}}"#;
        assert_eq!(rule_with(VolumeCreate, ok, &tmpfs), "allowed");
        let bind = r#"{"Name":"v","DriverOpts":{"type":"tmpfs","o":"bind"}}"#;
        assert_eq!(rule_with(VolumeCreate, bind, &tmpfs), "volume_options");
        assert_eq!(
            rule(VolumeCreate, r#"{"Name":"v","Driver":"rclone"}"#),
            "volume_driver"
        );
    }

    #[test]
    fn build_query() {
        let check = |target: &str| check_build_query(target, &policy()).map_err(|d| d.rule);
        assert_eq!(
            check("/build?t=a&q=1&networkmode=bridge&buildargs=%7B%7D&version=1"),
            Ok(())
        );
        assert_eq!(check("/build?networkmode=host"), Err("host_network"));
        assert_eq!(check("/build?networkmode=ho%73t"), Err("host_network"));
        assert_eq!(
            check("/build?t=a&networkmode=default&networkmode=host"),
            Err("host_network")
        );
        assert_eq!(check("/build?networkmode=container:x"), Err("namespace_join"));
        assert_eq!(check("/build?cgroupparent=/"), Err("not_allowed"));
        assert_eq!(check("/build?version=2"), Err("not_allowed"));
        assert_eq!(check("/build?futureflag=1"), Err("not_allowed"));
        assert_eq!(check("/build?t=a%zz"), Err("query"));
        assert_eq!(check("/build?t=a;networkmode=host"), Err("query"));
    }

    #[test]
    fn plugins() {
        let pull = |body: &str| rule(PluginPrivileges, body);
        assert_eq!(
            pull(r#"[{"Name":"network","Value":["host"]}]"#),
            "plugin_privilege"
        );
        assert_eq!(pull(r#"[{"Name":"mount","Value":["/var/lib"]}]"#), "host_path");
        assert_eq!(pull(r#"[{"Name":"network","Value":["bridge"]}]"#), "allowed");
        assert_eq!(pull(r#"{}"#), "invalid_type");
    }

    #[test]
    fn fail_closed() {
        assert_eq!(rule(ContainerCreate, ""), "empty_body");
        assert_eq!(rule(ContainerCreate, "{"), "invalid_json");
        assert_eq!(rule(ContainerCreate, "[]"), "invalid_type");
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
        );
        assert_eq!(form.map_err(|d| d.rule), Err("form_body"));
        assert_eq!(rule(ContainerCreate, &"[".repeat(500)), "invalid_json");
    }
}

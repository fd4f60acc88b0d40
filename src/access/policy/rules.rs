//! The named value rules of the allow-list table.

use super::json::{entries, field, strings, texts, GoJson};
use super::{join, type_error, Checker, Denial};

type Verdict = Result<(), Denial>;

fn deny(rule: &'static str, name: &str, message: String) -> Verdict {
    Err(Denial::new(rule, name, message))
}

/// The text values of a string field, or a type error.
fn text_values<'a>(values: &[&'a GoJson], name: &str) -> Result<Vec<&'a str>, Denial> {
    texts(values).ok_or_else(|| type_error(name))
}

/// A string field that may only hold one of `allowed` (compared exactly,
/// as dockerd does).
fn one_of(values: &[&GoJson], name: &str, rule: &'static str, allowed: &[&str]) -> Verdict {
    for v in text_values(values, name)? {
        if !allowed.contains(&v) {
            return deny(
                rule,
                name,
                format!("{name} {v:?} is not allowed (allowed: {allowed:?})"),
            );
        }
    }
    Ok(())
}

/// A boolean field that may only be true when `allowed`.
fn switch(values: &[&GoJson], name: &str, rule: &'static str, allowed: bool) -> Verdict {
    for v in values {
        match v {
            GoJson::Bool(true) if !allowed => return deny(rule, name, format!("{name} is not allowed")),
            GoJson::Bool(_) | GoJson::Null => {}
            _ => return Err(type_error(name)),
        }
    }
    Ok(())
}

/// A field that must stay at its zero value unless `allowed`.
fn zero_unless(values: &[&GoJson], name: &str, rule: &'static str, allowed: bool) -> Verdict {
    if allowed || values.iter().all(|v| v.is_zero()) {
        Ok(())
    } else {
        deny(rule, name, format!("{name} is not allowed"))
    }
}

pub fn privileged(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    switch(values, name, "privileged", c.policy.allow_privileged)
}

pub fn devices(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    zero_unless(values, name, "devices", c.policy.allow_devices)
}

pub fn volumes_from(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    zero_unless(values, name, "volumes_from", c.policy.allow_volumes_from)
}

/// `MaskedPaths` and `ReadonlyPaths`: an empty list is the API form of
/// `systempaths=unconfined` (a writable `/proc/sys`), so only absent or null.
pub fn system_paths(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    if c.policy.allow_unconfined || values.iter().all(|v| matches!(v, GoJson::Null)) {
        Ok(())
    } else {
        deny(
            "system_paths",
            name,
            format!("{name} must be left unset: it unmasks the host's /proc and /sys"),
        )
    }
}

/// A capability is compared after Docker's normalisation (case, `CAP_`).
fn cap_allowed(c: &Checker, cap: &str) -> bool {
    let upper = cap.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    c.policy.cap_add_allow.iter().any(|a| a == bare)
}

pub fn cap_add(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    for cap in strings(values, true).ok_or_else(|| type_error(name))? {
        if !cap_allowed(c, cap) {
            return deny("cap_add", name, format!("capability {cap} is not allowed"));
        }
    }
    Ok(())
}

/// Namespace modes: private ones, `host` only when the policy allows it,
/// and never `container:` (another container's namespace may be the host's).
fn namespace(c: &Checker, values: &[&GoJson], name: &str, private: &[&str]) -> Verdict {
    for mode in text_values(values, name)? {
        if private.contains(&mode) || (mode == "host" && c.policy.allow_host_namespaces) {
            continue;
        }
        if mode.to_ascii_lowercase().starts_with("container:") {
            return deny(
                "namespace_join",
                name,
                format!("{name} {mode:?} joins another container's namespace"),
            );
        }
        return deny("host_namespace", name, format!("{name} {mode:?} is not allowed"));
    }
    Ok(())
}

pub fn pid_mode(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    namespace(c, values, name, &[""])
}

pub fn ipc_mode(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    namespace(c, values, name, &["", "private", "shareable", "none"])
}

pub fn uts_mode(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    namespace(c, values, name, &[""])
}

pub fn userns_mode(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    namespace(c, values, name, &[""])
}

pub fn cgroupns_mode(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    namespace(c, values, name, &["", "private"])
}

/// A network a container joins: the built-in private ones, `host` when
/// allowed, or a user network by name. dockerd also finds networks by ID
/// prefix, so a name made only of hex digits might be the host network's
/// ID: such names are refused.
pub fn network_name(c: &Checker, network: &str, name: &str) -> Verdict {
    if matches!(network, "" | "default" | "bridge" | "none") {
        return Ok(());
    }
    if network.eq_ignore_ascii_case("host") {
        return if c.policy.allow_host_network {
            Ok(())
        } else {
            deny("host_network", name, "the host network is not allowed".into())
        };
    }
    if network.to_ascii_lowercase().starts_with("container:") {
        return deny(
            "namespace_join",
            name,
            format!("{name} {network:?} joins another container's network namespace"),
        );
    }
    if network.bytes().all(|b| b.is_ascii_hexdigit()) {
        return deny(
            "network_id",
            name,
            format!("network {network:?} could be a network ID; use the network's name"),
        );
    }
    Ok(())
}

pub fn network_mode(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    text_values(values, name)?
        .into_iter()
        .try_for_each(|n| network_name(c, n, name))
}

/// Only network namespaced sysctls (`net.*`): dockerd refuses those with
/// the host network itself.
pub fn sysctls(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    for (key, value) in entries(values).ok_or_else(|| type_error(name))? {
        if !matches!(value, GoJson::String(_) | GoJson::Null) {
            return Err(type_error(name));
        }
        if !key.starts_with("net.") {
            return deny("sysctls", name, format!("sysctl {key:?} is not a net.* sysctl"));
        }
    }
    Ok(())
}

/// Go's `strconv.ParseBool` spellings.
fn go_bool(s: &str) -> bool {
    matches!(
        s,
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
    )
}

/// Security options as dockerd parses them: `no-new-privileges` forms and
/// named AppArmor profiles the policy lists; never seccomp profiles (JSON
/// or `unconfined`), `label=`, `disable` or anything dockerd adds later.
pub fn security_opt(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    for opt in strings(values, false).ok_or_else(|| type_error(name))? {
        if c.policy.allow_unconfined || opt == "no-new-privileges" {
            continue;
        }
        let pair = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let ok = match pair {
            Some(("no-new-privileges", v)) => go_bool(v),
            Some(("apparmor", profile)) => c.policy.apparmor_profiles.iter().any(|p| p == profile),
            _ => false,
        };
        if !ok {
            return deny(
                "security_opt",
                name,
                format!("security option {opt:?} is not allowed"),
            );
        }
    }
    Ok(())
}

/// A negative score makes the container the last the kernel kills,
/// which lets it starve the router.
pub fn oom_score_adj(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    for v in values {
        match v {
            GoJson::Null => {}
            GoJson::Number(n) if *n >= 0.0 => {}
            GoJson::Number(_) => return deny("oom_score_adj", name, format!("{name} may not be negative")),
            _ => return Err(type_error(name)),
        }
    }
    Ok(())
}

pub fn runtime(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    one_of(values, name, "runtime", &["", "runc"])
}

pub fn isolation(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    one_of(values, name, "isolation", &["", "default"])
}

/// Log drivers that write to dockerd's own files or the journal; others are
/// plugins or senders (`syslog` can be pointed at any unix socket on the host).
pub fn log_driver(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    one_of(
        values,
        name,
        "log_driver",
        &["", "json-file", "local", "none", "journald"],
    )
}

/// Options for the daemon's *default* driver (no `Type`) could configure a
/// driver this policy never saw, such as a `syslog` the daemon was set to.
pub fn log_config(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    let options = field(values, "Config");
    if options.iter().all(|v| v.is_zero()) {
        return Ok(());
    }
    let kinds = text_values(&field(values, "Type"), &join(name, "Type"))?;
    if kinds.is_empty() || kinds.contains(&"") {
        return deny(
            "log_driver",
            &join(name, "Config"),
            "log options need a log driver named in Type".into(),
        );
    }
    Ok(())
}

/// Volume drivers: only the built-in `local` one (others are plugins).
pub fn local_driver(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    one_of(values, name, "volume_driver", &["", "local"])
}

pub fn network_driver(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    one_of(values, name, "network_driver", &["", "bridge"])
}

pub fn network_scope(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    one_of(values, name, "network_scope", &["", "local"])
}

pub fn ipam_driver(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    one_of(values, name, "ipam_driver", &["", "default"])
}

/// Bridge options that only tune the bridge dockerd makes; not its name,
/// which could put containers on the router's own LAN bridge.
pub fn bridge_options(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    const TUNING: [&str; 4] = [
        "com.docker.network.bridge.enable_icc",
        "com.docker.network.bridge.enable_ip_masquerade",
        "com.docker.network.bridge.host_binding_ipv4",
        "com.docker.network.driver.mtu",
    ];
    for (key, _) in entries(values).ok_or_else(|| type_error(name))? {
        if !TUNING.contains(&key) {
            return deny(
                "network_options",
                name,
                format!("network option {key:?} is not allowed"),
            );
        }
    }
    Ok(())
}

/// Mount propagation that never sends the container's mounts to the host.
pub fn propagation(_: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    one_of(
        values,
        name,
        "propagation",
        &["", "private", "rprivate", "slave", "rslave"],
    )
}

/// The local driver's options mount a filesystem on the host: `proc`,
/// `ext4` on a disk, `overlay` over `/etc`, `o=bind`. Only types the policy
/// lists (such as `tmpfs` or `nfs`), and never a bind.
pub fn volume_options(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    for (key, value) in entries(values).ok_or_else(|| type_error(name))? {
        let entry = join(name, key);
        let GoJson::String(value) = value else {
            return Err(type_error(&entry));
        };
        let ok = match key {
            "type" => c.policy.volume_types.iter().any(|t| t == value),
            "o" => !value
                .split(',')
                .any(|o| matches!(o.trim(), "bind" | "rbind") || o.contains("dir=")),
            "device" | "size" => true,
            _ => false,
        };
        if !ok || c.policy.volume_types.is_empty() {
            return deny(
                "volume_options",
                &entry,
                format!("volume option {key}={value:?} is not allowed"),
            );
        }
    }
    Ok(())
}

/// A volume name as dockerd's local driver accepts it.
fn volume_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Options after a bind's container path: access, relabel, copy and the
/// propagation modes that keep mounts from reaching the host.
const BIND_MODES: [&str; 12] = [
    "ro",
    "rw",
    "z",
    "Z",
    "nocopy",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "consistent",
    "cached",
    "delegated",
];

/// `source:target[:mode]`: an absolute source is a host path, anything else
/// must be a volume name.
pub fn binds(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    for bind in strings(values, false).ok_or_else(|| type_error(name))? {
        let mut parts = bind.splitn(3, ':');
        let source = parts.next().unwrap_or("");
        let mode = parts.nth(1).unwrap_or("");
        if source.starts_with('/') {
            c.host_path(source, name)?;
        } else if !volume_name(source) {
            return deny(
                "bind_source",
                name,
                format!("bind source {source:?} is not a volume name"),
            );
        } else {
            c.count_mount(name)?;
        }
        if let Some(bad) = mode.split(',').find(|m| !m.is_empty() && !BIND_MODES.contains(m)) {
            return deny("bind_mode", name, format!("bind option {bad:?} is not allowed"));
        }
    }
    Ok(())
}

/// A whole mount: its type decides what its source is.
pub fn mount(c: &Checker, values: &[&GoJson], name: &str) -> Verdict {
    let type_name = join(name, "Type");
    let source_name = join(name, "Source");
    let kinds = text_values(&field(values, "Type"), &type_name)?;
    let sources = text_values(&field(values, "Source"), &source_name)?;
    if kinds.is_empty() {
        return deny("mount_type", &type_name, "a mount needs a Type".into());
    }
    for kind in kinds {
        match kind {
            "bind" => sources.iter().try_for_each(|s| c.host_path(s, &source_name))?,
            "volume" => {
                c.count_mount(name)?;
                if let Some(bad) = sources.iter().find(|s| !s.is_empty() && !volume_name(s)) {
                    return deny(
                        "mount_source",
                        &source_name,
                        format!("volume mount source {bad:?} is not a volume name"),
                    );
                }
            }
            "tmpfs" => {
                if let Some(bad) = sources.iter().find(|s| !s.is_empty()) {
                    return deny(
                        "mount_source",
                        &source_name,
                        format!("a tmpfs mount takes no source ({bad:?})"),
                    );
                }
            }
            other => {
                return deny(
                    "mount_type",
                    &type_name,
                    format!("mount type {other:?} is not allowed"),
                )
            }
        }
    }
    Ok(())
}

/// The privileges a plugin asks for (`plugins/pull`, `upgrade`): dockerd
/// installs it only when they match what its config needs.
pub fn plugin_privileges(c: &Checker, json: &GoJson) -> Verdict {
    let GoJson::Array(items) = json else {
        return Err(type_error("privileges"));
    };
    for item in items {
        let item = [item];
        let names = strings(&field(&item, "Name"), true).ok_or_else(|| type_error("Name"))?;
        let values = strings(&field(&item, "Value"), false).ok_or_else(|| type_error("Value"))?;
        let p = c.policy;
        for name in names {
            let allowed = match name {
                "network" => p.allow_host_network || !values.contains(&"host"),
                "mount" => return deny("host_path", name, "plugin asks for host mounts".into()),
                "capabilities" => values.iter().all(|cap| cap_allowed(c, cap)),
                "device" | "allow-all-devices" => p.allow_devices,
                "host-pid" | "host-ipc" => p.allow_host_namespaces,
                _ => false,
            };
            if !allowed {
                return deny(
                    "plugin_privilege",
                    name,
                    format!("plugin privilege {name:?} is not allowed"),
                );
            }
        }
    }
    Ok(())
}

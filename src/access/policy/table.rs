//! The allow-list: every field of every checked body, with the rule its
//! value must pass. A field that is not listed passes only at Go's zero
//! value, so a field Docker adds tomorrow is refused until it is classified
//! here. `tests/spec_allowlist.rs` holds this table against Docker's spec.

use super::rules;
use super::{Check, KeyCheck};

/// What a field's value must be.
pub enum Rule {
    /// Harmless whatever it holds: names, limits, labels, ports, commands.
    Free,
    /// Refused unless at Go's zero value (absent, null, false, 0, "", [] or {}).
    Zero,
    /// A struct made of these tables' fields.
    Struct(&'static [&'static Table]),
    /// An array of such structs, element by element.
    List(&'static Table),
    /// A `map[string]` of such structs, with a rule for the keys.
    Map(&'static Table, KeyCheck),
    /// A named rule that reads the value and the policy's settings.
    Check(Check),
}

pub struct Field {
    pub name: &'static str,
    pub rule: Rule,
}

/// The fields of one Go struct (or of one part of it, for embedded structs).
pub struct Table {
    /// The definition's name in Docker's API spec.
    pub name: &'static str,
    pub fields: &'static [Field],
    /// A rule over the whole struct, run after its fields' rules.
    pub then: Option<Check>,
}

macro_rules! table {
    ($name:literal $(, then $then:expr)? ; $($field:literal => $rule:expr),* $(,)?) => {
        Table {
            name: $name,
            fields: &[$(Field { name: $field, rule: $rule }),*],
            then: table!(@then $($then)?),
        }
    };
    (@then) => { None };
    (@then $then:expr) => { Some($then) };
}

use Rule::{Free, List, Map, Struct, Zero};

const fn check(c: Check) -> Rule {
    Rule::Check(c)
}

pub static CONTAINER_CONFIG: Table = table!("ContainerConfig";
    "Hostname" => Free,
    "Domainname" => Free,
    "User" => Free,
    "AttachStdin" => Free,
    "AttachStdout" => Free,
    "AttachStderr" => Free,
    "ExposedPorts" => Free,
    "Tty" => Free,
    "OpenStdin" => Free,
    "StdinOnce" => Free,
    "Env" => Free,
    "Cmd" => Free,
    "Healthcheck" => Free,
    "ArgsEscaped" => Free,
    "Image" => Free,
    "Volumes" => Free,
    "WorkingDir" => Free,
    "Entrypoint" => Free,
    "NetworkDisabled" => Free,
    "MacAddress" => Free,
    "OnBuild" => Free,
    "Labels" => Free,
    "StopSignal" => Free,
    "StopTimeout" => Free,
    "Shell" => Free,
);

pub static RESOURCES: Table = table!("Resources";
    "CpuShares" => Free,
    "Memory" => Free,
    "CgroupParent" => Zero,
    "BlkioWeight" => Free,
    "BlkioWeightDevice" => Free,
    "BlkioDeviceReadBps" => Free,
    "BlkioDeviceWriteBps" => Free,
    "BlkioDeviceReadIOps" => Free,
    "BlkioDeviceWriteIOps" => Free,
    "CpuPeriod" => Free,
    "CpuQuota" => Free,
    "CpuRealtimePeriod" => Free,
    "CpuRealtimeRuntime" => Free,
    "CpusetCpus" => Free,
    "CpusetMems" => Free,
    "Devices" => check(rules::devices),
    "DeviceCgroupRules" => check(rules::devices),
    "DeviceRequests" => check(rules::devices),
    "KernelMemory" => Free,
    "KernelMemoryTCP" => Free,
    "MemoryReservation" => Free,
    "MemorySwap" => Free,
    "MemorySwappiness" => Free,
    "NanoCpus" => Free,
    "OomKillDisable" => Free,
    "Init" => Free,
    "PidsLimit" => Free,
    "Ulimits" => Free,
    "CpuCount" => Free,
    "CpuPercent" => Free,
    "IOMaximumIOps" => Free,
    "IOMaximumBandwidth" => Free,
);

pub static HOST_CONFIG: Table = table!("HostConfig";
    "Binds" => check(rules::binds),
    "ContainerIDFile" => Free,
    "LogConfig" => Struct(&[&LOG_CONFIG]),
    "NetworkMode" => check(rules::network_mode),
    "PortBindings" => Free,
    "RestartPolicy" => Free,
    "AutoRemove" => Free,
    "VolumeDriver" => check(rules::local_driver),
    "VolumesFrom" => check(rules::volumes_from),
    "Mounts" => List(&MOUNT),
    "ConsoleSize" => Free,
    "Annotations" => Zero,
    "CapAdd" => check(rules::cap_add),
    "CapDrop" => Free,
    "CgroupnsMode" => check(rules::cgroupns_mode),
    "Dns" => Free,
    "DnsOptions" => Free,
    "DnsSearch" => Free,
    "ExtraHosts" => Free,
    "GroupAdd" => Free,
    "IpcMode" => check(rules::ipc_mode),
    "Cgroup" => Zero,
    "Links" => Free,
    "OomScoreAdj" => check(rules::oom_score_adj),
    "PidMode" => check(rules::pid_mode),
    "Privileged" => check(rules::privileged),
    "PublishAllPorts" => Free,
    "ReadonlyRootfs" => Free,
    "SecurityOpt" => check(rules::security_opt),
    "StorageOpt" => Zero,
    "Tmpfs" => Free,
    "UTSMode" => check(rules::uts_mode),
    "UsernsMode" => check(rules::userns_mode),
    "ShmSize" => Free,
    "Sysctls" => check(rules::sysctls),
    "Runtime" => check(rules::runtime),
    "Isolation" => check(rules::isolation),
    "MaskedPaths" => check(rules::system_paths),
    "ReadonlyPaths" => check(rules::system_paths),
);

pub static LOG_CONFIG: Table = table!("LogConfig", then rules::log_config;
    "Type" => check(rules::log_driver),
    "Config" => Free,
);

pub static MOUNT: Table = table!("Mount", then rules::mount;
    "Target" => Free,
    // Read with Type by the rule over the whole mount.
    "Source" => Free,
    "Type" => Free,
    "ReadOnly" => Free,
    "Consistency" => Free,
    "BindOptions" => Struct(&[&BIND_OPTIONS]),
    "VolumeOptions" => Struct(&[&VOLUME_OPTIONS]),
    "TmpfsOptions" => Free,
    "ImageOptions" => Zero,
    "ClusterOptions" => Zero,
);

pub static BIND_OPTIONS: Table = table!("BindOptions";
    "Propagation" => check(rules::propagation),
    "NonRecursive" => Free,
    // Would create a missing source, which must exist to be checked.
    "CreateMountpoint" => Zero,
    "ReadOnlyNonRecursive" => Free,
    "ReadOnlyForceRecursive" => Free,
);

pub static VOLUME_OPTIONS: Table = table!("VolumeOptions";
    "NoCopy" => Free,
    "Labels" => Free,
    "DriverConfig" => Struct(&[&DRIVER_CONFIG]),
    "Subpath" => Zero,
);

pub static DRIVER_CONFIG: Table = table!("DriverConfig";
    "Name" => check(rules::local_driver),
    "Options" => check(rules::volume_options),
);

pub static NETWORKING_CONFIG: Table = table!("NetworkingConfig";
    "EndpointsConfig" => Map(&ENDPOINT_SETTINGS, rules::network_name),
);

pub static ENDPOINT_SETTINGS: Table = table!("EndpointSettings";
    "IPAMConfig" => Free,
    "Links" => Free,
    "Aliases" => Free,
    // Names the network as well.
    "NetworkID" => check(rules::network_mode),
    "EndpointID" => Free,
    "Gateway" => Free,
    "IPAddress" => Free,
    "IPPrefixLen" => Free,
    "IPv6Gateway" => Free,
    "GlobalIPv6Address" => Free,
    "GlobalIPv6PrefixLen" => Free,
    "MacAddress" => Free,
    "DriverOpts" => Zero,
    "GwPriority" => Free,
    "DNSNames" => Free,
);

/// `containers/create`: Config, the host config both nested and (before
/// API 1.44) embedded at the top level, and the networking config.
pub static CREATE_WRAPPER: Table = table!("ContainerCreateRequest";
    "HostConfig" => Struct(&[&RESOURCES, &HOST_CONFIG]),
    "NetworkingConfig" => Struct(&[&NETWORKING_CONFIG]),
    // Deprecated spelling of CpusetCpus.
    "Cpuset" => Free,
);

pub static UPDATE: Table = table!("ContainerUpdateRequest";
    "RestartPolicy" => Free,
);

pub static EXEC_CONFIG: Table = table!("ExecConfig";
    // docker-py sends it; dockerd ignores it (the path names the container).
    "Container" => Free,
    "AttachStdin" => Free,
    "AttachStdout" => Free,
    "AttachStderr" => Free,
    "ConsoleSize" => Free,
    "DetachKeys" => Free,
    "Detach" => Free,
    "Tty" => Free,
    "Env" => Free,
    "Cmd" => Free,
    "Privileged" => check(rules::privileged),
    "User" => Free,
    "WorkingDir" => Free,
);

pub static VOLUME_CREATE: Table = table!("VolumeCreateOptions";
    "Name" => Free,
    "Driver" => check(rules::local_driver),
    "DriverOpts" => check(rules::volume_options),
    "Labels" => Free,
    "ClusterVolumeSpec" => Zero,
);

pub static NETWORK_CREATE: Table = table!("NetworkCreateRequest";
    "Name" => Free,
    "CheckDuplicate" => Free,
    "Driver" => check(rules::network_driver),
    "Scope" => check(rules::network_scope),
    "Internal" => Free,
    "Attachable" => Free,
    "Ingress" => Zero,
    "ConfigOnly" => Zero,
    "ConfigFrom" => Zero,
    "IPAM" => Struct(&[&IPAM]),
    "EnableIPv4" => Free,
    "EnableIPv6" => Free,
    "Options" => check(rules::bridge_options),
    "Labels" => Free,
);

pub static IPAM: Table = table!("IPAM";
    "Driver" => check(rules::ipam_driver),
    "Config" => Free,
    "Options" => Zero,
);

pub static NETWORK_CONNECT: Table = table!("NetworkConnectRequest";
    "Container" => Free,
    "EndpointConfig" => Struct(&[&ENDPOINT_SETTINGS]),
);

pub static NETWORK_DISCONNECT: Table = table!("NetworkDisconnectRequest";
    "Container" => Free,
    "Force" => Free,
);

/// The top-level tables of each checked body.
pub fn tables(kind: crate::access::route::BodyCheck) -> &'static [&'static Table] {
    use crate::access::route::BodyCheck::*;
    static BODIES: [(crate::access::route::BodyCheck, &[&Table]); 9] = [
        (
            ContainerCreate,
            &[&CONTAINER_CONFIG, &RESOURCES, &HOST_CONFIG, &CREATE_WRAPPER],
        ),
        (ContainerUpdate, &[&RESOURCES, &UPDATE]),
        (Commit, &[&CONTAINER_CONFIG]),
        (ExecCreate, &[&EXEC_CONFIG]),
        (VolumeCreate, &[&VOLUME_CREATE]),
        (NetworkCreate, &[&NETWORK_CREATE]),
        (NetworkConnect, &[&NETWORK_CONNECT]),
        (NetworkDisconnect, &[&NETWORK_DISCONNECT]),
        (PluginPrivileges, &[]),
    ];
    BODIES.iter().find(|(k, _)| *k == kind).map_or(&[], |(_, t)| t)
}

//! Configuration: defaults, then the optional JSON file, then command-line
//! flags. Parsing is pure so SIGHUP can redo it and fuzzers can drive it.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::access::auth::{
    builtin_roles, token_digest_from_hex, AuthConfig, CertName, CertRole, PasswordHash, Role, Rpcd, Token,
    UnixPeer, User,
};
use crate::access::policy::{clean_absolute, Policy};
use crate::access::route::Class;
use crate::http::reply::json_text;
use crate::net::upstream::UpstreamAddr;
use crate::relay::pool::largest_raw_body;

mod file;

pub const USAGE: &str = "\
dockermand: an authenticated, zero-copy gateway to the Docker Engine API

Usage: dockermand [OPTIONS]

Options:
  --listen ADDR           where to listen; repeatable. 127.0.0.1:2375, [::1]:2375,
                          unix:/run/dockermand.sock, tls://0.0.0.0:2376 (default 127.0.0.1:2375)
  --upstream ADDR         dockerd: unix:///var/run/docker.sock (default) or tcp://host:port
  --config FILE           JSON file with the same settings (snake_case keys);
                          re-read on SIGHUP. Flags win over the file.
  --log-level LEVEL       error, warn, info (default) or debug
  --max-connections N     client connections served at once (default 256)
  --max-connections-per-address N
                          of those, from one IPv4 address, IPv6 /64 or unix uid (default 64)
  --body-budget BYTES     memory all checked request bodies share (default 4194304)
  --max-head-bytes N      largest request head (default 16384)
  --max-headers N         most header fields in a head (default 100)
  --header-timeout SECS   time allowed for a request head (default 10)
  --idle-timeout SECS     keep-alive time between requests (default 60)
  --shutdown-grace SECS   time in-flight requests get on SIGTERM (default 10)
  --unix-mode MODE        file mode of unix listeners, octal (default 0660)
  --no-splice             copy through buffers instead of splice(2)
  --no-ui                 do not serve the web UI at /_dockermand/ui/
  --tls-cert FILE         PEM certificate chain of tls:// listeners, server's first
  --tls-key FILE          PEM private key of that certificate
  --tls-client-ca FILE    PEM CA certificates that sign client certificates
  --tls-client-auth MODE  required (default with a client CA) or optional
  --insecure              allow non-loopback listeners without authentication
  --dry-run               log what the policy would deny, but forward it
  --ws-echo               serve a WebSocket echo at /_dockermand/echo (tests)
  --hash-token TOKEN      print the sha256 to put in auth.tokens, then exit
  --hash-password         read a password on stdin, print its hash, then exit
  --selftest              check parsers, policy and a loopback round trip; exit 0 if all pass
  --check-config FILE     print every problem that would make FILE refused, one per
                          line; exit 0 only if there is none
  --help, --version

Authentication, roles, CORS, allowed hosts and the body policy are set in
the config file: see README.md.
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    /// TCP with TLS (the `tls` cargo feature).
    Tls(SocketAddr),
    Unix(PathBuf),
}

impl ListenAddr {
    pub fn parse(s: &str) -> Result<ListenAddr, String> {
        if let Some(path) = s.strip_prefix("unix://").or_else(|| s.strip_prefix("unix:")) {
            if path.is_empty() {
                return Err(format!("listen {s:?}: empty socket path"));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        let (s2, tls) = match s.strip_prefix("tls://") {
            Some(rest) => (rest, true),
            None => (s.strip_prefix("tcp://").unwrap_or(s), false),
        };
        let addr = s2.parse().map_err(|_| {
            format!("listen {s:?}: expected IP:PORT, [IPv6]:PORT, tls://IP:PORT or unix:/path")
        })?;
        Ok(if tls {
            ListenAddr::Tls(addr)
        } else {
            ListenAddr::Tcp(addr)
        })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, ListenAddr::Tls(_))
    }

    fn is_local_only(&self) -> bool {
        match self {
            ListenAddr::Tcp(a) | ListenAddr::Tls(a) => a.ip().is_loopback(),
            ListenAddr::Unix(_) => true,
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "http://{a}"),
            ListenAddr::Tls(a) => write!(f, "tls://{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: Vec<ListenAddr>,
    pub upstream: UpstreamAddr,
    pub log_level: log::LevelFilter,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Bytes all checked request bodies may hold at once.
    pub body_budget: usize,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    pub unix_mode: u32,
    pub splice: bool,
    /// Serve the web UI (when it is built in: the `ui` cargo feature).
    pub ui: bool,
    pub insecure: bool,
    pub config_file: Option<PathBuf>,
    pub auth: AuthConfig,
    /// Exact origins browsers may call from (CORS, CSRF and WebSockets).
    pub cors_origins: Vec<String>,
    /// Host names accepted besides IP literals and localhost.
    pub allowed_hosts: Vec<String>,
    pub policy: Policy,
    pub dry_run: bool,
    pub max_consoles: usize,
    /// A console's browser is pinged this often, and closed when a ping
    /// goes unanswered until the next.
    pub console_ping: Duration,
    /// A console with neither input nor output for this long is closed.
    pub console_idle: Duration,
    pub ws_echo: bool,
    pub tls: TlsSettings,
}

/// Whether a TLS client must show a certificate signed by the client CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// The handshake fails without one, as dockerd's `--tlsverify` does.
    Required,
    /// One is verified if shown; without one, requests need a credential.
    Optional,
}

/// What `tls://` listeners serve. The files are read when listening
/// starts and again on SIGHUP, not here, so parsing stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
    /// A client still in its handshake this long after connecting is cut.
    pub handshake_timeout: Duration,
    /// Handshakes under way at once; a new client beyond it evicts the oldest.
    pub max_handshakes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 2375)))],
            upstream: UpstreamAddr::Unix(PathBuf::from("/var/run/docker.sock")),
            log_level: log::LevelFilter::Info,
            max_connections: 256,
            max_connections_per_address: 64,
            body_budget: 4 * 1024 * 1024,
            max_head_bytes: 16 * 1024,
            max_headers: 100,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            unix_mode: 0o660,
            splice: true,
            ui: true,
            insecure: false,
            config_file: None,
            auth: AuthConfig {
                roles: builtin_roles(&Policy::default()),
                session_ttl: Duration::from_secs(3600),
                ..AuthConfig::default()
            },
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            policy: Policy::default(),
            dry_run: false,
            max_consoles: 16,
            console_ping: Duration::from_secs(20),
            console_idle: Duration::from_secs(1800),
            ws_echo: false,
            tls: TlsSettings {
                cert: None,
                key: None,
                client_ca: None,
                client_auth: ClientAuth::Required,
                handshake_timeout: Duration::from_secs(10),
                max_handshakes: 64,
            },
        }
    }
}

/// The JSON config file; every key is optional. Read by `file::parse`
/// against its table of keys, which follows these structs.
#[derive(Debug, Default)]
pub struct FileConfig {
    pub listen: Option<Vec<String>>,
    pub upstream: Option<String>,
    pub log_level: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub body_budget_bytes: Option<usize>,
    pub max_head_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    pub header_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub shutdown_grace_secs: Option<u64>,
    pub unix_mode: Option<String>,
    pub no_splice: Option<bool>,
    pub ui: Option<bool>,
    pub insecure: Option<bool>,
    pub auth: Option<AuthFile>,
    /// By name, sorted; a name given twice keeps its last role.
    pub roles: Option<Vec<(String, RoleFile)>>,
    pub cors_origins: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub policy: Option<PolicyFile>,
    pub dry_run: Option<bool>,
    pub max_consoles: Option<usize>,
    pub console_ping_secs: Option<u64>,
    pub console_idle_secs: Option<u64>,
    pub tls: Option<TlsFile>,
}

#[derive(Debug, Default)]
pub struct TlsFile {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_ca: Option<String>,
    pub client_auth: Option<String>,
    pub handshake_timeout_secs: Option<u64>,
    pub max_handshakes: Option<usize>,
}

/// One `auth.certs` entry: exactly one of `cn` and `san`.
#[derive(Debug)]
pub struct CertFile {
    pub cn: Option<String>,
    pub san: Option<String>,
    pub role: String,
}

#[derive(Debug, Default)]
pub struct AuthFile {
    pub tokens: Option<Vec<TokenFile>>,
    pub users: Option<Vec<UserFile>>,
    pub rpcd: Option<RpcdFile>,
    pub unix_peers: Option<Vec<UnixPeerFile>>,
    pub certs: Option<Vec<CertFile>>,
    pub cert_default_role: Option<String>,
    pub session_ttl_secs: Option<u64>,
}

#[derive(Debug)]
pub struct UnixPeerFile {
    pub uid: u32,
    pub role: String,
}

#[derive(Debug)]
pub struct TokenFile {
    pub name: String,
    /// Hex SHA-256 of the token (`dockermand --hash-token`).
    pub sha256: String,
    pub role: String,
}

#[derive(Debug)]
pub struct UserFile {
    pub name: String,
    /// `dockermand --hash-password` output.
    pub password: String,
    pub role: String,
}

#[derive(Debug)]
pub struct RpcdFile {
    pub enabled: Option<bool>,
    pub ubus: Option<String>,
    pub acl_object: Option<String>,
}

#[derive(Debug)]
pub struct RoleFile {
    pub classes: Vec<String>,
    pub methods: Option<Vec<String>>,
    /// `false` forwards bodies unchecked, like admin.
    pub check_bodies: Option<bool>,
    /// Overrides of the global policy for this role.
    pub policy: Option<PolicyFile>,
}

#[derive(Debug, Default, Clone)]
pub struct PolicyFile {
    pub bind_dirs: Option<Vec<String>>,
    pub cap_add_allow: Option<Vec<String>>,
    pub volume_types: Option<Vec<String>>,
    pub apparmor_profiles: Option<Vec<String>>,
    pub allow_privileged: Option<bool>,
    pub allow_devices: Option<bool>,
    pub allow_host_namespaces: Option<bool>,
    pub allow_host_network: Option<bool>,
    pub allow_volumes_from: Option<bool>,
    pub allow_unconfined: Option<bool>,
    pub max_body_bytes: Option<usize>,
}

impl PolicyFile {
    fn apply(&self, p: &mut Policy) -> Result<(), String> {
        if let Some(dirs) = &self.bind_dirs {
            p.bind_dirs = dirs
                .iter()
                .map(|d| {
                    clean_absolute(d).ok_or_else(|| format!("bind_dirs: {d:?} is not a clean absolute path"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // An entry of one bind dir must not be another's parent: a
            // container binding it could swap the other's entries.
            if let Some((a, b)) = p
                .bind_dirs
                .iter()
                .flat_map(|a| p.bind_dirs.iter().map(move |b| (a, b)))
                .find(|(a, b)| a != b && b.starts_with(a))
            {
                return Err(format!("bind_dirs: {b:?} lies inside {a:?}"));
            }
        }
        set(&mut p.volume_types, self.volume_types.clone());
        set(&mut p.apparmor_profiles, self.apparmor_profiles.clone());
        if let Some(caps) = &self.cap_add_allow {
            p.cap_add_allow = caps
                .iter()
                .map(|c| {
                    let upper = c.trim().to_ascii_uppercase();
                    upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
                })
                .collect();
        }
        set(&mut p.allow_privileged, self.allow_privileged);
        set(&mut p.allow_devices, self.allow_devices);
        set(&mut p.allow_host_namespaces, self.allow_host_namespaces);
        set(&mut p.allow_host_network, self.allow_host_network);
        set(&mut p.allow_volumes_from, self.allow_volumes_from);
        set(&mut p.allow_unconfined, self.allow_unconfined);
        set(&mut p.max_body_bytes, self.max_body_bytes);
        check_range("policy.max_body_bytes", p.max_body_bytes, 1024, 64 * 1024 * 1024)
    }
}

pub fn parse_file(text: &str) -> Result<FileConfig, String> {
    file::parse(text).map_err(|e| format!("config file: {e}"))
}

pub enum Command {
    Run(Box<Config>),
    CheckConfig(String),
    Help,
    Version,
    HashToken(String),
    HashPassword,
    SelfTest,
}

impl Config {
    /// Builds the configuration from the arguments (without the program
    /// name), reading the file they name.
    pub fn from_args(args: &[String]) -> Result<Command, String> {
        if let Some(path) = flag_value(args, "--check-config")? {
            return Ok(Command::CheckConfig(path.to_string()));
        }
        let file = match flag_value(args, "--config")? {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("config file {path}: {e}"))?;
                Some((PathBuf::from(path), parse_file(&text)?))
            }
            None => None,
        };
        let mut cfg = Config::default();
        if let Some((path, file)) = file {
            cfg.apply_file(file)?;
            cfg.config_file = Some(path);
        }
        let mut listen_from_flags = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match name {
                "--help" | "--version" | "--hash-password" | "--selftest" | "--no-splice" | "--no-ui"
                | "--insecure" | "--dry-run" | "--ws-echo"
                    if inline.is_some() =>
                {
                    return Err(format!("{name} takes no value"))
                }
                "--help" | "-h" => return Ok(Command::Help),
                "--version" | "-V" => return Ok(Command::Version),
                "--hash-token" => return Ok(Command::HashToken(value()?)),
                "--hash-password" => return Ok(Command::HashPassword),
                "--selftest" => return Ok(Command::SelfTest),
                "--check-config" => return Ok(Command::CheckConfig(value()?)),
                "--config" => {
                    value()?;
                }
                "--listen" => listen_from_flags.push(ListenAddr::parse(&value()?)?),
                "--upstream" => cfg.upstream = UpstreamAddr::parse(&value()?)?,
                "--log-level" => cfg.log_level = parse_level(&value()?)?,
                "--max-connections" => cfg.max_connections = number(name, &value()?)?,
                "--max-connections-per-address" => cfg.max_connections_per_address = number(name, &value()?)?,
                "--body-budget" => cfg.body_budget = number(name, &value()?)?,
                "--max-head-bytes" => cfg.max_head_bytes = number(name, &value()?)?,
                "--max-headers" => cfg.max_headers = number(name, &value()?)?,
                "--header-timeout" => cfg.header_timeout = seconds(name, &value()?)?,
                "--idle-timeout" => cfg.idle_timeout = seconds(name, &value()?)?,
                "--shutdown-grace" => cfg.shutdown_grace = seconds(name, &value()?)?,
                "--unix-mode" => cfg.unix_mode = octal(&value()?)?,
                "--no-splice" => cfg.splice = false,
                "--no-ui" => cfg.ui = false,
                "--insecure" => cfg.insecure = true,
                "--dry-run" => cfg.dry_run = true,
                "--ws-echo" => cfg.ws_echo = true,
                "--tls-cert" => cfg.tls.cert = Some(PathBuf::from(value()?)),
                "--tls-key" => cfg.tls.key = Some(PathBuf::from(value()?)),
                "--tls-client-ca" => cfg.tls.client_ca = Some(PathBuf::from(value()?)),
                "--tls-client-auth" => cfg.tls.client_auth = client_auth(&value()?)?,
                other => return Err(format!("unknown argument {other:?} (see --help)")),
            }
        }
        if !listen_from_flags.is_empty() {
            cfg.listen = listen_from_flags;
        }
        cfg.validate()?;
        Ok(Command::Run(Box::new(cfg)))
    }

    fn apply_file(&mut self, f: FileConfig) -> Result<(), String> {
        if let Some(list) = f.listen {
            self.listen = list
                .iter()
                .map(|s| ListenAddr::parse(s))
                .collect::<Result<_, _>>()?;
        }
        if let Some(u) = f.upstream {
            self.upstream = UpstreamAddr::parse(&u)?;
        }
        if let Some(l) = f.log_level {
            self.log_level = parse_level(&l)?;
        }
        set(&mut self.max_connections, f.max_connections);
        set(
            &mut self.max_connections_per_address,
            f.max_connections_per_address,
        );
        set(&mut self.body_budget, f.body_budget_bytes);
        set(&mut self.max_head_bytes, f.max_head_bytes);
        set(&mut self.max_headers, f.max_headers);
        set(
            &mut self.header_timeout,
            f.header_timeout_secs.map(Duration::from_secs),
        );
        set(
            &mut self.idle_timeout,
            f.idle_timeout_secs.map(Duration::from_secs),
        );
        set(
            &mut self.shutdown_grace,
            f.shutdown_grace_secs.map(Duration::from_secs),
        );
        if let Some(m) = f.unix_mode {
            self.unix_mode = octal(&m)?;
        }
        set(&mut self.splice, f.no_splice.map(|n| !n));
        set(&mut self.ui, f.ui);
        set(&mut self.insecure, f.insecure);
        set(&mut self.dry_run, f.dry_run);
        set(&mut self.max_consoles, f.max_consoles);
        set(
            &mut self.console_ping,
            f.console_ping_secs.map(Duration::from_secs),
        );
        set(
            &mut self.console_idle,
            f.console_idle_secs.map(Duration::from_secs),
        );
        set(&mut self.cors_origins, f.cors_origins);
        set(
            &mut self.allowed_hosts,
            f.allowed_hosts
                .map(|h| h.iter().map(|s| s.to_ascii_lowercase()).collect()),
        );
        if let Some(t) = f.tls {
            self.apply_tls(t)?;
        }
        if let Some(p) = &f.policy {
            p.apply(&mut self.policy)?;
        }
        let mut roles = builtin_roles(&self.policy);
        for (name, r) in f.roles.unwrap_or_default() {
            if roles.iter().any(|b| b.name == name) {
                return Err(format!("role {name:?} is built in and cannot be redefined"));
            }
            let classes = r
                .classes
                .iter()
                .map(|c| Class::parse(c).ok_or_else(|| format!("role {name:?}: unknown class {c:?}")))
                .collect::<Result<_, _>>()?;
            let policy = if r.check_bodies == Some(false) {
                None
            } else {
                let mut p = self.policy.clone();
                if let Some(o) = &r.policy {
                    o.apply(&mut p)?;
                }
                Some(p)
            };
            let methods = r
                .methods
                .map(|m| m.iter().map(|s| s.to_ascii_uppercase()).collect());
            roles.push(Role {
                name,
                classes,
                methods,
                policy,
            });
        }
        self.auth.roles = roles;
        if let Some(a) = f.auth {
            self.apply_auth(a)?;
        }
        Ok(())
    }

    fn apply_tls(&mut self, t: TlsFile) -> Result<(), String> {
        let tls = &mut self.tls;
        set(&mut tls.cert, t.cert.map(|p| Some(PathBuf::from(p))));
        set(&mut tls.key, t.key.map(|p| Some(PathBuf::from(p))));
        set(&mut tls.client_ca, t.client_ca.map(|p| Some(PathBuf::from(p))));
        if let Some(mode) = t.client_auth {
            tls.client_auth = client_auth(&mode)?;
        }
        set(
            &mut tls.handshake_timeout,
            t.handshake_timeout_secs.map(Duration::from_secs),
        );
        set(&mut tls.max_handshakes, t.max_handshakes);
        Ok(())
    }

    fn apply_auth(&mut self, a: AuthFile) -> Result<(), String> {
        let has_role = |r: &str| self.auth.roles.iter().any(|x| x.name == r);
        for t in a.tokens.unwrap_or_default() {
            if !has_role(&t.role) {
                return Err(format!("token {:?}: unknown role {:?}", t.name, t.role));
            }
            let sha256 = token_digest_from_hex(&t.sha256)
                .ok_or_else(|| format!("token {:?}: sha256 must be 64 hex digits", t.name))?;
            self.auth.tokens.push(Token {
                name: t.name,
                sha256,
                role: t.role,
            });
        }
        for u in a.users.unwrap_or_default() {
            if !has_role(&u.role) {
                return Err(format!("user {:?}: unknown role {:?}", u.name, u.role));
            }
            let password = PasswordHash::parse(&u.password).map_err(|e| format!("user {:?}: {e}", u.name))?;
            self.auth.users.push(User {
                name: u.name,
                password,
                role: u.role,
            });
        }
        for p in a.unix_peers.unwrap_or_default() {
            if !has_role(&p.role) {
                return Err(format!("unix peer uid {}: unknown role {:?}", p.uid, p.role));
            }
            if self.auth.unix_peers.iter().any(|q| q.uid == p.uid) {
                return Err(format!("unix peer uid {} is listed twice", p.uid));
            }
            self.auth.unix_peers.push(UnixPeer {
                uid: p.uid,
                role: p.role,
            });
        }
        for c in a.certs.unwrap_or_default() {
            let name = match (c.cn, c.san) {
                (Some(cn), None) => CertName::CommonName(cn),
                (None, Some(san)) => CertName::AltName(san),
                _ => return Err("each auth.certs entry needs exactly one of cn and san".into()),
            };
            if !has_role(&c.role) {
                return Err(format!("cert {name}: unknown role {:?}", c.role));
            }
            self.auth.certs.push(CertRole { name, role: c.role });
        }
        if let Some(role) = a.cert_default_role {
            if !has_role(&role) {
                return Err(format!("cert_default_role: unknown role {role:?}"));
            }
            self.auth.cert_default_role = Some(role);
        }
        if let Some(r) = a.rpcd.filter(|r| r.enabled != Some(false)) {
            self.auth.rpcd = Some(Rpcd {
                ubus: r.ubus.unwrap_or_else(|| "ubus".into()),
                acl_object: r.acl_object.unwrap_or_else(|| "luci-app-dockerman".into()),
            });
        }
        set(
            &mut self.auth.session_ttl,
            a.session_ttl_secs.map(Duration::from_secs),
        );
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        match self
            .limit_problems()
            .into_iter()
            .chain(self.tls_problem())
            .chain(self.exposure_problem())
            .next()
        {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// The settings outside their range, each judged on its own.
    fn limit_problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = [
            check_range("max_connections", self.max_connections, 1, 65_536),
            check_range(
                "max_connections_per_address",
                self.max_connections_per_address,
                1,
                65_536,
            ),
            check_range("max_head_bytes", self.max_head_bytes, 1024, 1024 * 1024),
            check_range("max_headers", self.max_headers, 8, crate::http::MAX_HEADERS),
            check_range("max_consoles", self.max_consoles, 1, 4096),
            check_range("tls.max_handshakes", self.tls.max_handshakes, 1, 65_536),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        // Every body a policy allows must fit, or it could never be checked.
        let largest = self
            .auth
            .roles
            .iter()
            .filter_map(|r| r.policy.as_ref())
            .chain([&self.policy])
            .map(|p| largest_raw_body(p.max_body_bytes))
            .max()
            .unwrap_or(0);
        if self.body_budget < largest || self.body_budget > 1 << 30 {
            problems.push(format!(
                "body_budget must be between {largest} (the largest checked body with its \
                 chunk framing) and {}",
                1 << 30
            ));
        }
        for (name, d) in [
            ("header_timeout", self.header_timeout),
            ("idle_timeout", self.idle_timeout),
            ("console_ping_secs", self.console_ping),
            ("console_idle_secs", self.console_idle),
            ("tls.handshake_timeout_secs", self.tls.handshake_timeout),
        ] {
            if d.is_zero() {
                problems.push(format!("{name} must be at least 1 second"));
            }
        }
        if self.listen.is_empty() {
            problems.push("no listen address".into());
        }
        problems
    }

    /// A `tls://` listener this build or these settings cannot serve, which
    /// depends on listeners and TLS settings together.
    fn tls_problem(&self) -> Option<String> {
        let listener = self.listen.iter().find(|l| l.is_tls())?;
        if !cfg!(feature = "tls") {
            return Some(format!(
                "cannot listen on {listener}: this dockermand was built without TLS (cargo feature tls)"
            ));
        }
        if self.tls.cert.is_none() || self.tls.key.is_none() {
            return Some(format!(
                "listening on {listener} needs tls.cert and tls.key (--tls-cert, --tls-key)"
            ));
        }
        None
    }

    pub fn listens_with_tls(&self) -> bool {
        self.listen.iter().any(ListenAddr::is_tls)
    }

    /// No credential of any kind is configured: every request is anonymous
    /// admin. A client CA counts as one, since it makes certificates
    /// credentials (mapped to roles, or refused).
    /// The UI is built in and not turned off.
    pub fn serves_ui(&self) -> bool {
        cfg!(feature = "ui") && self.ui
    }

    pub fn is_open(&self) -> bool {
        let verifies_certs = self.tls.client_ca.is_some() && self.listens_with_tls();
        self.auth.is_open() && !verifies_certs
    }

    /// A network listener with nothing to authenticate its clients, which
    /// depends on listeners, auth and `insecure` together.
    fn exposure_problem(&self) -> Option<String> {
        if self.insecure || !self.is_open() {
            return None;
        }
        let open = self.listen.iter().find(|l| !l.is_local_only())?;
        Some(format!(
            "refusing to listen on {open}: it is reachable from the network and \
             no authentication is configured; configure auth or pass --insecure"
        ))
    }
}

/// Every problem that would make the daemon refuse the config file `text`,
/// one message each; empty when it would start with it. Parts of the file
/// (top-level keys, each token, user, unix peer and role) are judged on
/// their own, so one mistake does not hide the next; settings that depend
/// on each other are judged once every part passes.
pub fn check_file(text: &str) -> Vec<String> {
    let whole = match serde_json::from_slice::<serde_json::Value>(text.as_bytes()) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return vec!["config file: not a JSON object".into()],
        Err(e) => return vec![format!("config file: {e}")],
    };
    let mut problems: Vec<String> = Vec::new();
    let mut note = |problem: String| {
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    };
    for part in file_parts(&whole) {
        let mut cfg = Config::default();
        match parse_file(&json_text(&part)).and_then(|f| cfg.apply_file(f)) {
            Ok(()) => cfg.limit_problems().into_iter().for_each(&mut note),
            Err(e) => note(e),
        }
    }
    if problems.is_empty() {
        let mut cfg = Config::default();
        if let Err(e) = parse_file(text).and_then(|f| cfg.apply_file(f)) {
            problems.push(e);
        } else {
            problems.extend(cfg.tls_problem().into_iter().chain(cfg.exposure_problem()));
        }
    }
    problems
}

/// Splits a config file into objects that can each be applied alone. Auth
/// entries keep the roles they may name (those valid on their own).
fn file_parts(whole: &serde_json::Map<String, serde_json::Value>) -> Vec<serde_json::Value> {
    use serde_json::{Map, Value};
    let object = |key: &str, value: Value| Value::Object(Map::from_iter([(key.to_string(), value)]));
    let role_parts: Vec<Value> = match whole.get("roles") {
        Some(Value::Object(roles)) => roles
            .iter()
            .map(|(name, role)| object("roles", object(name, role.clone())))
            .collect(),
        _ => Vec::new(),
    };
    let valid_roles: Map<String, Value> = role_parts
        .iter()
        .filter(|part| {
            parse_file(&json_text(part))
                .and_then(|f| Config::default().apply_file(f))
                .is_ok()
        })
        .filter_map(|part| part.get("roles").and_then(Value::as_object))
        .flat_map(|roles| roles.clone())
        .collect();
    let mut parts = Vec::new();
    for (key, value) in whole {
        match (key.as_str(), value) {
            ("auth", Value::Object(auth)) => {
                for (auth_key, auth_value) in auth {
                    let entries = match auth_value {
                        Value::Array(items) => items.iter().map(|i| Value::Array(vec![i.clone()])).collect(),
                        other => vec![other.clone()],
                    };
                    for entry in entries {
                        let mut part = Map::new();
                        part.insert("auth".into(), object(auth_key, entry));
                        part.insert("roles".into(), Value::Object(valid_roles.clone()));
                        parts.push(Value::Object(part));
                    }
                }
            }
            ("roles", Value::Object(_)) => parts.extend(role_parts.iter().cloned()),
            _ => parts.push(object(key, value.clone())),
        }
    }
    parts
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn flag_value<'a>(args: &'a [String], flag: &str) -> Result<Option<&'a str>, String> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == flag {
            found = Some(it.next().ok_or_else(|| format!("{flag} needs a value"))?.as_str());
        } else if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = Some(v);
        }
    }
    Ok(found)
}

fn client_auth(s: &str) -> Result<ClientAuth, String> {
    match s {
        "required" => Ok(ClientAuth::Required),
        "optional" => Ok(ClientAuth::Optional),
        _ => Err(format!("tls client auth {s:?}: expected required or optional")),
    }
}

fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    match s.to_ascii_lowercase().as_str() {
        "error" => Ok(log::LevelFilter::Error),
        "warn" | "warning" => Ok(log::LevelFilter::Warn),
        "info" => Ok(log::LevelFilter::Info),
        "debug" => Ok(log::LevelFilter::Debug),
        "trace" => Ok(log::LevelFilter::Trace),
        "off" => Ok(log::LevelFilter::Off),
        _ => Err(format!("unknown log level {s:?}")),
    }
}

fn number(name: &str, s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| format!("{name}: {s:?} is not a number"))
}

fn seconds(name: &str, s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("{name}: {s:?} is not a number of seconds"))
}

fn octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("unix mode {s:?} is not an octal file mode"))
}

fn check_range(name: &str, v: usize, lo: usize, hi: usize) -> Result<(), String> {
    if v < lo || v > hi {
        return Err(format!("{name} must be between {lo} and {hi}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn run(list: &[&str]) -> Result<Config, String> {
        match Config::from_args(&args(list))? {
            Command::Run(c) => Ok(*c),
            _ => Err("not a run".into()),
        }
    }

    #[test]
    fn safe_defaults() {
        let c = run(&[]).unwrap();
        assert_eq!(c.listen, [ListenAddr::Tcp("127.0.0.1:2375".parse().unwrap())]);
        assert_eq!(c.upstream, UpstreamAddr::Unix("/var/run/docker.sock".into()));
    }

    #[test]
    fn flags() {
        let c = run(&[
            "--listen",
            "[::1]:0",
            "--listen=unix:/tmp/d.sock",
            "--upstream",
            "tcp://127.0.0.1:2376",
            "--no-splice",
            "--no-ui",
            "--max-connections",
            "3",
            "--unix-mode",
            "600",
        ])
        .unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.listen[1], ListenAddr::Unix("/tmp/d.sock".into()));
        assert!(!c.splice && !c.ui);
        assert_eq!(c.max_connections, 3);
        assert_eq!(c.max_connections_per_address, 64);
        assert_eq!(c.body_budget, 4 * 1024 * 1024);
        assert_eq!(c.unix_mode, 0o600);
        let c = run(&["--max-connections-per-address=8", "--body-budget", "2000000"]).unwrap();
        assert_eq!((c.max_connections_per_address, c.body_budget), (8, 2_000_000));
    }

    #[test]
    fn tls_listeners_flags_and_file_keys() {
        let plain_build = !cfg!(feature = "tls");
        let no_files = run(&["--listen", "tls://127.0.0.1:0"]).unwrap_err();
        if plain_build {
            assert!(no_files.contains("built without TLS"), "{no_files}");
            return;
        }
        assert!(no_files.contains("tls.cert"), "{no_files}");
        let c = run(&[
            "--listen",
            "tls://[::1]:2376",
            "--tls-cert",
            "c.pem",
            "--tls-key=k.pem",
            "--tls-client-ca",
            "ca.pem",
        ])
        .unwrap();
        assert_eq!(c.listen, vec![ListenAddr::Tls("[::1]:2376".parse().unwrap())]);
        assert_eq!(c.listen[0].to_string(), "tls://[::1]:2376");
        assert_eq!(c.tls.key.as_deref(), Some(std::path::Path::new("k.pem")));
        assert_eq!(c.tls.client_auth, ClientAuth::Required);
        assert!(run(&["--tls-client-auth", "maybe"]).is_err());
        let f = parse_file(
            r#"{"listen":["tls://0.0.0.0:2376"],"tls":{"cert":"c","key":"k","client_ca":"ca",
                "client_auth":"optional","handshake_timeout_secs":3,"max_handshakes":8},
                "auth":{"certs":[{"cn":"laptop","role":"operator"},{"san":"ci.example.net","role":"read"}],
                "cert_default_role":"read"}}"#,
        )
        .unwrap();
        let mut c = Config::default();
        c.apply_file(f).unwrap();
        assert_eq!(c.tls.client_auth, ClientAuth::Optional);
        assert_eq!(
            (c.tls.handshake_timeout, c.tls.max_handshakes),
            (Duration::from_secs(3), 8)
        );
        assert_eq!(c.auth.certs[1].name, CertName::AltName("ci.example.net".into()));
        assert_eq!(c.auth.cert_default_role.as_deref(), Some("read"));
        for bad in [
            r#"{"auth":{"certs":[{"cn":"a","san":"b","role":"read"}]}}"#,
            r#"{"auth":{"certs":[{"role":"read"}]}}"#,
            r#"{"auth":{"certs":[{"cn":"a","role":"nobody"}]}}"#,
            r#"{"auth":{"cert_default_role":"nobody"}}"#,
            r#"{"tls":{"client_auth":"sometimes"}}"#,
        ] {
            let applied = parse_file(bad).and_then(|f| Config::default().apply_file(f));
            assert!(applied.is_err(), "{bad}");
        }
    }

    #[test]
    fn a_client_ca_makes_certificates_the_credential() {
        if !cfg!(feature = "tls") {
            return;
        }
        let ca = ["--tls-cert", "c", "--tls-key", "k", "--tls-client-ca", "ca"];
        // Nothing else configured: every certificate gets 401 until mapped,
        // so a network listener is not open to anyone.
        let c = run(&[&["--listen", "tls://0.0.0.0:2376"][..], &ca].concat()).unwrap();
        assert!(!c.is_open());
        // Without a client CA, a TLS listener authenticates nobody.
        let err = run(&[
            "--listen",
            "tls://0.0.0.0:2376",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
        ])
        .unwrap_err();
        assert!(err.contains("--insecure"), "{err}");
        let c = run(&[
            "--listen",
            "tls://127.0.0.1:2376",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
        ])
        .unwrap();
        assert!(c.is_open());
    }

    #[test]
    fn refuses_network_listener_without_insecure() {
        assert!(run(&["--listen", "0.0.0.0:2375"])
            .unwrap_err()
            .contains("--insecure"));
        assert!(run(&["--listen", "[::]:2375"]).is_err());
        assert!(run(&["--listen", "0.0.0.0:2375", "--insecure"]).is_ok());
    }

    #[test]
    fn bad_values() {
        assert!(run(&["--listen"]).is_err());
        assert!(run(&["--bogus"]).is_err());
        assert!(run(&["--insecure=false"]).is_err());
        assert!(Config::from_args(&args(&["--selftest=false"])).is_err());
        assert!(run(&["--max-head-bytes", "10"]).is_err());
        assert!(run(&["--unix-mode", "999"]).is_err());
        assert!(run(&["--log-level", "loud"]).is_err());
        assert!(run(&["--max-connections-per-address", "0"]).is_err());
        assert!(run(&["--body-budget", "1000000"])
            .unwrap_err()
            .contains("body_budget"));
    }

    #[test]
    fn file_keys() {
        let f = parse_file(r#"{"listen":["127.0.0.1:0"],"log_level":"debug","no_splice":true,"ui":false}"#)
            .unwrap();
        let mut c = Config::default();
        assert!(c.serves_ui() == cfg!(feature = "ui"));
        c.apply_file(f).unwrap();
        assert_eq!(c.log_level, log::LevelFilter::Debug);
        assert!(!c.splice && !c.ui && !c.serves_ui());
        let f = parse_file(r#"{"max_connections_per_address":5,"body_budget_bytes":3000000}"#).unwrap();
        c.apply_file(f).unwrap();
        assert_eq!((c.max_connections_per_address, c.body_budget), (5, 3_000_000));
        assert!(parse_file(r#"{"lisen":[]}"#).is_err());
        assert!(parse_file("not json").is_err());
    }

    #[test]
    fn console_keepalive_keys() {
        let c = Config::default();
        assert_eq!(
            (c.console_ping, c.console_idle),
            (Duration::from_secs(20), Duration::from_secs(1800))
        );
        let mut c = Config::default();
        c.apply_file(parse_file(r#"{"console_ping_secs":2,"console_idle_secs":60}"#).unwrap())
            .unwrap();
        assert_eq!(
            (c.console_ping, c.console_idle),
            (Duration::from_secs(2), Duration::from_secs(60))
        );
        assert!(c.validate().is_ok());
        for zero in [r#"{"console_ping_secs":0}"#, r#"{"console_idle_secs":0}"#] {
            let mut c = Config::default();
            c.apply_file(parse_file(zero).unwrap()).unwrap();
            assert!(c.validate().unwrap_err().starts_with("console_"), "{zero}");
        }
    }

    #[test]
    fn check_file_reports_every_problem() {
        let text = r#"{
            "listen": ["lan:2375"], "log_level": "loud", "unix_mode": "999",
            "max_connections": 0, "policy": {"bind_dirs": ["opt/docker"]},
            "auth": {"users": [{"name": "a", "password": "x", "role": "read"},
                               {"name": "b", "password": "y", "role": "nobody"}]}
        }"#;
        let problems = check_file(text);
        assert_eq!(problems.len(), 7, "{problems:#?}");
        for needle in [
            "lan:2375",
            "loud",
            "999",
            "max_connections",
            "opt/docker",
            "\"a\"",
            "nobody",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle} in {problems:#?}"
            );
        }
    }

    #[test]
    fn check_file_judges_tls_listeners_with_their_settings() {
        let tls = r#"{"listen":["tls://127.0.0.1:2376"],"tls":{"cert":"c","key":"k"}}"#;
        let no_key = r#"{"listen":["tls://127.0.0.1:2376"],"tls":{"cert":"c"}}"#;
        let exposed = r#"{"listen":["tls://0.0.0.0:2376"],"tls":{"cert":"c","key":"k"}}"#;
        if cfg!(feature = "tls") {
            assert_eq!(check_file(tls), Vec::<String>::new());
            assert!(check_file(no_key)[0].contains("tls.key"));
            assert!(
                check_file(exposed)[0].contains("--insecure"),
                "{:?}",
                check_file(exposed)
            );
        } else {
            assert!(check_file(tls)[0].contains("without TLS"));
        }
    }

    #[test]
    fn check_file_accepts_what_the_daemon_accepts() {
        assert!(check_file("{}").is_empty());
        let roles = r#"{"roles": {"ops": {"classes": ["read"]}},
            "auth": {"tokens": [{"name": "t", "sha256": "00000000000000000000000000000000000000000000000000000000000000aa", "role": "ops"}]},
            "listen": ["0.0.0.0:2375"]}"#;
        assert!(check_file(roles).is_empty(), "{:?}", check_file(roles));
        let exposed = check_file(r#"{"listen": ["0.0.0.0:2375"]}"#);
        assert_eq!(exposed.len(), 1);
        assert!(exposed[0].contains("refusing to listen"));
        assert_eq!(check_file("[]"), ["config file: not a JSON object"]);
        assert_eq!(check_file(r#"{"lisen": 1}"#).len(), 1);
    }

    #[test]
    fn unix_peers() {
        let apply = |text: &str| Config::default().apply_file(parse_file(text)?);
        let f = parse_file(r#"{"auth":{"unix_peers":[{"uid":1000,"role":"operator"}]}}"#).unwrap();
        let mut c = Config::default();
        c.apply_file(f).unwrap();
        assert_eq!(c.auth.unix_peer(1000).map(|p| p.role), Some("operator".into()));
        assert!(!c.auth.is_open());
        assert!(apply(r#"{"auth":{"unix_peers":[{"uid":1,"role":"nobody"}]}}"#)
            .unwrap_err()
            .contains("unknown role"));
        let twice = r#"{"auth":{"unix_peers":[{"uid":1,"role":"read"},{"uid":1,"role":"admin"}]}}"#;
        assert!(apply(twice).unwrap_err().contains("twice"));
        assert!(apply(r#"{"auth":{"unix_peers":[{"uid":-1,"role":"read"}]}}"#).is_err());
    }
}

//! Who is asking: principals, roles, credentials (bearer tokens, our own
//! login sessions, the router's rpcd sessions), login rate limits, and what
//! a role may do.
//!
//! Credential parsing is pure; sessions are a small bounded table owned by
//! the event loop (login limits and password hashing are in `login`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::access::policy::Policy;
use crate::access::route::Class;
use crate::crypto::random::random_bytes;
use crate::crypto::sha256::{ct_eq, from_hex, hex, pbkdf2_sha256, sha256};
use crate::tls::cert_names::CertNames;

/// Name of our session cookie.
pub const COOKIE: &str = "dockermand_session";
/// Hex digits of a session's or ticket's secret.
pub const SESSION_SECRET_LEN: usize = 48;
/// Most live sessions (own logins, cached rpcd checks, tickets) kept.
pub const MAX_SESSIONS: usize = 1024;
/// Most PBKDF2 rounds a stored password may ask for: each login costs the
/// hashing worker this many rounds, and every unknown user name as much.
pub const MAX_PASSWORD_ITERATIONS: u32 = 200_000;
/// How long an rpcd answer is trusted before asking again.
pub const RPCD_CACHE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub classes: Vec<Class>,
    /// `None`: every method.
    pub methods: Option<Vec<String>>,
    /// `None`: bodies are not checked (admin).
    pub policy: Option<Policy>,
}

impl Role {
    pub fn allows(&self, method: &str, class: Class) -> bool {
        self.classes.contains(&class)
            && self
                .methods
                .as_ref()
                .is_none_or(|m| m.iter().any(|x| x == method))
    }
}

/// The built-in roles, given the global policy.
pub fn builtin_roles(policy: &Policy) -> Vec<Role> {
    let methods = |m: &[&str]| Some(m.iter().map(|s| s.to_string()).collect());
    vec![
        Role {
            name: "read".into(),
            classes: vec![Class::Read, Class::Logs],
            methods: methods(&["GET", "HEAD"]),
            policy: Some(policy.clone()),
        },
        Role {
            name: "operator".into(),
            // Swarm, plugins and checkpoints reach past containers: admin only.
            classes: Class::ALL.into_iter().filter(|c| *c != Class::System).collect(),
            methods: None,
            policy: Some(policy.clone()),
        },
        Role {
            name: "admin".into(),
            classes: Class::ALL.to_vec(),
            methods: None,
            policy: None,
        },
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    pub sha256: [u8; 32],
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: PasswordHash,
    pub role: String,
}

/// Bytes of salt in the hashes `--hash-password` makes.
const SALT_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub hash: [u8; 32],
}

impl PasswordHash {
    /// `pbkdf2-sha256$ITERATIONS$SALT_BASE64$HASH_BASE64`
    pub fn parse(s: &str) -> Result<PasswordHash, String> {
        let bad = || format!("password hash {s:?} is not pbkdf2-sha256$ITER$SALT$HASH");
        let parts: Vec<&str> = s.split('$').collect();
        let [scheme, iter, salt, hash] = parts[..] else {
            return Err(bad());
        };
        let iterations: u32 = iter.parse().map_err(|_| bad())?;
        let salt = crate::crypto::base64::decode(salt.as_bytes()).ok_or_else(bad)?;
        let hash: [u8; 32] = crate::crypto::base64::decode(hash.as_bytes())
            .and_then(|h| h.try_into().ok())
            .ok_or_else(bad)?;
        if scheme != "pbkdf2-sha256" || iterations == 0 {
            return Err(bad());
        }
        if iterations > MAX_PASSWORD_ITERATIONS {
            return Err(format!(
                "password hash with {iterations} iterations: at most {MAX_PASSWORD_ITERATIONS} are allowed \
                 (each login would hold the hashing worker too long); rehash with --hash-password"
            ));
        }
        Ok(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }

    pub fn create(password: &str, iterations: u32) -> std::io::Result<String> {
        let salt = random_bytes::<SALT_LEN>()?;
        let hash = pbkdf2_sha256(password.as_bytes(), &salt, iterations);
        Ok(format!(
            "pbkdf2-sha256${iterations}${}${}",
            crate::crypto::base64::encode(&salt),
            crate::crypto::base64::encode(&hash)
        ))
    }

    pub fn verify(&self, password: &str) -> bool {
        ct_eq(
            &pbkdf2_sha256(password.as_bytes(), &self.salt, self.iterations),
            &self.hash,
        )
    }
}

/// A local user (a unix-socket client's uid) who needs no credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixPeer {
    pub uid: u32,
    pub role: String,
}

/// A name in a client certificate that `auth.certs` maps to a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertName {
    /// The subject's commonName, compared exactly.
    CommonName(String),
    /// A subjectAltName (DNS name, email, URI or IP address as text),
    /// compared without ASCII case, as DNS names are.
    AltName(String),
}

impl std::fmt::Display for CertName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertName::CommonName(n) => write!(f, "cn {n:?}"),
            CertName::AltName(n) => write!(f, "san {n:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRole {
    pub name: CertName,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rpcd {
    /// The `ubus` program to run.
    pub ubus: String,
    /// LuCI ACL group whose `read`/`write` decide the role.
    pub acl_object: String,
}

/// Everything about who may do what, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthConfig {
    pub tokens: Vec<Token>,
    pub users: Vec<User>,
    pub rpcd: Option<Rpcd>,
    pub unix_peers: Vec<UnixPeer>,
    /// Verified client certificates' names and their roles; first match wins.
    pub certs: Vec<CertRole>,
    /// The role of a verified certificate that no entry names.
    pub cert_default_role: Option<String>,
    pub roles: Vec<Role>,
    pub session_ttl: Duration,
}

impl AuthConfig {
    /// No credentials (nor local users) configured: every request is
    /// anonymous admin, which the config only allows on loopback and unix
    /// listeners.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
            && self.users.is_empty()
            && self.rpcd.is_none()
            && self.unix_peers.is_empty()
            && self.certs.is_empty()
            && self.cert_default_role.is_none()
    }

    /// The principal a verified client certificate stands for, if any.
    pub fn cert_principal(&self, cert: &CertNames) -> Option<Principal> {
        let principal = |name: &str, role: &str| Principal {
            name: format!("cert:{name}"),
            role: role.to_string(),
            ambient: false,
        };
        let named = self.certs.iter().find_map(|c| {
            let found = match &c.name {
                CertName::CommonName(n) => cert.common_names.iter().find(|cn| *cn == n),
                CertName::AltName(n) => cert.alt_names.iter().find(|san| san.eq_ignore_ascii_case(n)),
            };
            found.map(|name| principal(name, &c.role))
        });
        named.or_else(|| {
            let role = self.cert_default_role.as_deref()?;
            let name = cert.common_names.iter().chain(&cert.alt_names).next();
            Some(principal(name.map_or("unnamed", String::as_str), role))
        })
    }

    /// The principal a unix-socket client with this uid is without a credential.
    pub fn unix_peer(&self, uid: u32) -> Option<Principal> {
        let peer = self.unix_peers.iter().find(|p| p.uid == uid)?;
        Some(Principal {
            name: PeerId::Uid(uid).to_string(),
            role: peer.role.clone(),
            ambient: false,
        })
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The token's principal, comparing against every stored hash.
    pub fn find_token(&self, presented: &str) -> Option<&Token> {
        let digest = sha256(presented.as_bytes());
        let mut found = None;
        for t in &self.tokens {
            if ct_eq(&digest, &t.sha256) && found.is_none() {
                found = Some(t);
            }
        }
        found
    }

    /// The user called `name`, and the hash a login for that name is
    /// checked against. An unknown name is checked against a hash that
    /// nothing matches, with as many rounds as the slowest configured user
    /// and a salt as long as ours, so that it costs the same work and timing
    /// does not tell which users exist.
    pub fn login_target(&self, name: &str) -> (Option<&User>, PasswordHash) {
        match self.users.iter().find(|u| u.name == name) {
            Some(u) => (Some(u), u.password.clone()),
            None => (
                None,
                PasswordHash {
                    iterations: self
                        .users
                        .iter()
                        .map(|u| u.password.iterations)
                        .max()
                        .unwrap_or(1),
                    salt: vec![0; SALT_LEN],
                    hash: [0; 32],
                },
            ),
        }
    }
}

/// `Bearer <token>`; other schemes are not ours.
pub fn parse_authorization(value: &[u8]) -> Option<String> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    if scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_graphic())
    {
        Some(token.to_string())
    } else {
        None
    }
}

/// The value of cookie `name` in a `Cookie` header (RFC 6265 syntax).
pub fn parse_cookie(header: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(header).ok()?;
    text.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim() == name && !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| v.to_string())
    })
}

/// Prefix of the WebSocket subprotocols that carry a token.
const TOKEN_SUBPROTOCOL: &str = "dockermand.token.";

/// A token offered as a WebSocket subprotocol, and the protocol to echo.
pub fn parse_subprotocol(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?;
    text.split(',').map(str::trim).find_map(|p| {
        let token = p.strip_prefix(TOKEN_SUBPROTOCOL)?;
        (!token.is_empty()).then(|| (token.to_string(), p.to_string()))
    })
}

/// A `Sec-WebSocket-Protocol` value without our token protocols, which are
/// credentials and must not reach dockerd; `None` when nothing is left.
pub fn without_token_subprotocols(header: &[u8]) -> Option<Vec<u8>> {
    let kept: Vec<&[u8]> = header
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|p| !p.is_empty() && !p.starts_with(TOKEN_SUBPROTOCOL.as_bytes()))
        .collect();
    (!kept.is_empty()).then(|| kept.join(&b", "[..]))
}

/// Who is at the other end of a client socket, as the kernel tells it: the
/// address of a TCP client, the uid of a unix-socket client. Rate limits key
/// by this, and a uid is its own variant rather than an address made up for
/// it, so a local user and a network client can never share (or exhaust)
/// each other's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerId {
    Ip(IpAddr),
    Uid(u32),
}

impl PeerId {
    /// Who a limit counts this peer as: an IPv6 client by its /64, since
    /// one host is routinely given a whole /64 and can pick any address in
    /// it; an IPv4-mapped IPv6 address as the IPv4 address it is.
    pub fn limit_key(self) -> PeerId {
        match self {
            PeerId::Ip(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => PeerId::Ip(IpAddr::V4(v4)),
                None => PeerId::Ip(IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into())),
            },
            other => other,
        }
    }
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerId::Ip(ip) => write!(f, "{ip}"),
            PeerId::Uid(uid) => write!(f, "uid:{uid}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: String,
    /// Authenticated by an ambient credential (cookie): needs CSRF checks.
    pub ambient: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Login,
    /// A cached rpcd answer for an rpcd session id.
    Rpcd,
    /// A one-time WebSocket ticket.
    Ticket,
}

struct Session {
    kind: SessionKind,
    principal: Principal,
    expires: Instant,
}

/// Live sessions, keyed by the SHA-256 of their secret so a memory dump
/// does not hand them out.
#[derive(Default)]
pub struct Sessions {
    by_hash: HashMap<[u8; 32], Session>,
}

impl Sessions {
    pub fn create(
        &mut self,
        kind: SessionKind,
        principal: Principal,
        ttl: Duration,
        now: Instant,
    ) -> std::io::Result<String> {
        self.expire(now);
        if self.by_hash.len() >= MAX_SESSIONS {
            let oldest = self
                .by_hash
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.by_hash.remove(&k);
            }
        }
        let secret = hex(&random_bytes::<{ SESSION_SECRET_LEN / 2 }>()?);
        self.insert(&secret, kind, principal, ttl, now);
        Ok(secret)
    }

    /// Remembers an answer about an externally issued secret (rpcd).
    pub fn insert(
        &mut self,
        secret: &str,
        kind: SessionKind,
        principal: Principal,
        ttl: Duration,
        now: Instant,
    ) {
        if self.by_hash.len() < MAX_SESSIONS || self.by_hash.contains_key(&sha256(secret.as_bytes())) {
            self.by_hash.insert(
                sha256(secret.as_bytes()),
                Session {
                    kind,
                    principal,
                    expires: now + ttl,
                },
            );
        }
    }

    /// The principal of a live session of `kind`; tickets work once.
    /// The principal of a live session. Looking does not spend a ticket:
    /// whoever admits a request with one removes it (`remove`).
    pub fn lookup(&self, secret: &str, kind: SessionKind, now: Instant) -> Option<Principal> {
        let s = self.by_hash.get(&sha256(secret.as_bytes()))?;
        (s.kind == kind && s.expires > now).then(|| s.principal.clone())
    }

    pub fn remove(&mut self, secret: &str) {
        self.by_hash.remove(&sha256(secret.as_bytes()));
    }

    /// Ends every session, ticket and cached rpcd answer.
    pub fn clear(&mut self) {
        self.by_hash.clear();
    }

    /// Live sessions, tickets and cached rpcd answers.
    pub fn count(&self) -> usize {
        self.by_hash.len()
    }

    fn expire(&mut self, now: Instant) {
        self.by_hash.retain(|_, s| s.expires > now);
    }
}

/// What a login carries: a dockermand user's or (`account: "router"`) a
/// router user's name and password, or an API token to trade for a cookie.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: Option<String>,
    password: Option<String>,
    account: Option<String>,
    token: Option<String>,
}

/// What a well-formed login offers.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential {
    Password { username: String, password: String },
    Router { username: String, password: String },
    Token(String),
}

impl LoginRequest {
    /// `None` for anything but exactly one of the three forms: a malformed
    /// login counts as a wrong password, and is never hashed.
    pub fn credential(self) -> Option<Credential> {
        match (self.username, self.password, self.account.as_deref(), self.token) {
            (Some(username), Some(password), None, None) => Some(Credential::Password { username, password }),
            (Some(username), Some(password), Some("router"), None) => {
                Some(Credential::Router { username, password })
            }
            (None, None, None, Some(token)) => Some(Credential::Token(token)),
            _ => None,
        }
    }
}

/// An rpcd session id as LuCI makes them: 32 hex digits.
pub fn looks_like_rpcd_session(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads `{"access": true}` from `ubus call session access`.
pub fn parse_ubus_access(output: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Access {
        access: bool,
    }
    serde_json::from_slice::<Access>(output).is_ok_and(|a| a.access)
}

/// The session `ubus call session login` made, if the password was right.
pub fn parse_ubus_login(output: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Login {
        ubus_rpc_session: String,
    }
    serde_json::from_slice::<Login>(output)
        .ok()
        .map(|l| l.ubus_rpc_session)
        .filter(|s| looks_like_rpcd_session(s))
}

pub fn token_digest_from_hex(s: &str) -> Option<[u8; 32]> {
    from_hex(s).and_then(|v| v.try_into().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(common: &[&str], alt: &[&str]) -> CertNames {
        CertNames {
            common_names: common.iter().map(|s| s.to_string()).collect(),
            alt_names: alt.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_login_is_exactly_one_of_password_router_account_or_token() {
        let read = |body: &str| {
            serde_json::from_str::<LoginRequest>(body)
                .ok()
                .and_then(LoginRequest::credential)
        };
        assert_eq!(
            read(r#"{"username":"a","password":"b"}"#),
            Some(Credential::Password {
                username: "a".into(),
                password: "b".into()
            })
        );
        assert_eq!(
            read(r#"{"username":"root","password":"b","account":"router"}"#),
            Some(Credential::Router {
                username: "root".into(),
                password: "b".into()
            })
        );
        assert_eq!(read(r#"{"token":"t"}"#), Some(Credential::Token("t".into())));
        for malformed in [
            "{}",
            r#"{"username":"a"}"#,
            r#"{"password":"b"}"#,
            r#"{"username":"a","password":"b","token":"t"}"#,
            r#"{"token":"t","account":"router"}"#,
            r#"{"username":"a","password":"b","account":"other"}"#,
            r#"{"username":"a","password":"b","extra":1}"#,
        ] {
            assert_eq!(read(malformed), None, "{malformed}");
        }
    }

    #[test]
    fn certificates_map_to_roles_by_cn_or_san_first_match_first() {
        let entry = |name: CertName, role: &str| CertRole {
            name,
            role: role.into(),
        };
        let mut auth = AuthConfig {
            certs: vec![
                entry(CertName::CommonName("laptop".into()), "operator"),
                entry(CertName::AltName("ci.example.net".into()), "read"),
                entry(CertName::CommonName("both".into()), "admin"),
            ],
            ..AuthConfig::default()
        };
        let role = |auth: &AuthConfig, n: &CertNames| {
            auth.cert_principal(n).map(|p| format!("{} {}", p.name, p.role))
        };
        assert_eq!(
            role(&auth, &names(&["laptop"], &[])).as_deref(),
            Some("cert:laptop operator")
        );
        // A commonName is compared exactly; a DNS name without ASCII case.
        assert_eq!(role(&auth, &names(&["Laptop"], &[])), None);
        assert_eq!(role(&auth, &names(&["laptop "], &[])), None);
        assert_eq!(
            role(&auth, &names(&[], &["CI.Example.NET"])).as_deref(),
            Some("cert:CI.Example.NET read")
        );
        // A SAN entry does not match a CN of the same text, nor the reverse.
        assert_eq!(role(&auth, &names(&["ci.example.net"], &["laptop"])), None);
        // Entries are tried in order: the first that names the cert wins.
        assert_eq!(
            role(&auth, &names(&["both"], &["ci.example.net"])).as_deref(),
            Some("cert:ci.example.net read")
        );
        assert!(!auth.is_open());
        auth.cert_default_role = Some("read".into());
        assert_eq!(
            role(&auth, &names(&["x"], &["y"])).as_deref(),
            Some("cert:x read")
        );
        assert_eq!(role(&auth, &names(&[], &["y"])).as_deref(), Some("cert:y read"));
        assert_eq!(
            role(&auth, &names(&[], &[])).as_deref(),
            Some("cert:unnamed read")
        );
    }

    #[test]
    fn authorization_header() {
        assert_eq!(parse_authorization(b"Bearer abc.def"), Some("abc.def".into()));
        assert_eq!(parse_authorization(b"bearer   abc"), Some("abc".into()));
        assert_eq!(parse_authorization(b"Basic dXNlcjpwYXNz"), None);
        assert_eq!(parse_authorization(b"Bearer "), None);
        assert_eq!(parse_authorization(b"Bearer a b"), None);
        assert_eq!(parse_authorization(b"\xff"), None);
    }

    #[test]
    fn cookies() {
        let h = b"theme=dark; dockermand_session=abc123; other=1";
        assert_eq!(parse_cookie(h, COOKIE), Some("abc123".into()));
        assert_eq!(parse_cookie(b"dockermand_session=", COOKIE), None);
        assert_eq!(parse_cookie(b"dockermand_session=a;b", COOKIE), Some("a".into()));
        assert_eq!(parse_cookie(b"x_dockermand_session=abc", COOKIE), None);
        assert_eq!(parse_cookie(b"dockermand_session=a%20b", COOKIE), None);
    }

    #[test]
    fn subprotocols() {
        assert_eq!(
            parse_subprotocol(b"binary, dockermand.token.s3cret"),
            Some(("s3cret".into(), "dockermand.token.s3cret".into()))
        );
        assert_eq!(parse_subprotocol(b"dockermand.token."), None);
    }

    #[test]
    fn token_subprotocols_are_stripped() {
        assert_eq!(
            without_token_subprotocols(b"binary, dockermand.token.s3cret ,base64"),
            Some(b"binary, base64".to_vec())
        );
        assert_eq!(without_token_subprotocols(b" dockermand.token.s3cret"), None);
        assert_eq!(
            without_token_subprotocols(b"dockermand.token.a,dockermand.token.b"),
            None
        );
        assert_eq!(without_token_subprotocols(b"chat"), Some(b"chat".to_vec()));
    }

    #[test]
    fn unix_peers() {
        let cfg = AuthConfig {
            unix_peers: vec![UnixPeer {
                uid: 1000,
                role: "operator".into(),
            }],
            ..AuthConfig::default()
        };
        assert!(!cfg.is_open());
        let p = cfg.unix_peer(1000).unwrap();
        assert_eq!(
            (p.name.as_str(), p.role.as_str(), p.ambient),
            ("uid:1000", "operator", false)
        );
        assert_eq!(cfg.unix_peer(0), None);
    }

    #[test]
    fn tokens_are_hashed() {
        let cfg = AuthConfig {
            tokens: vec![Token {
                name: "ci".into(),
                sha256: sha256(b"s3cret"),
                role: "read".into(),
            }],
            ..AuthConfig::default()
        };
        assert_eq!(cfg.find_token("s3cret").map(|t| t.name.as_str()), Some("ci"));
        assert!(cfg.find_token("s3cre").is_none());
    }

    #[test]
    fn passwords() {
        let stored = PasswordHash::create("hunter2", 1000).unwrap();
        let h = PasswordHash::parse(&stored).unwrap();
        assert!(h.verify("hunter2"));
        assert!(!h.verify("hunter3"));
        assert!(PasswordHash::parse("md5$1$x$y").is_err());
        assert!(PasswordHash::parse("pbkdf2-sha256$0$AA==$AA==").is_err());
        let capped = format!(
            "pbkdf2-sha256${MAX_PASSWORD_ITERATIONS}$AA==${}",
            "A".repeat(43) + "="
        );
        assert!(PasswordHash::parse(&capped).is_ok());
        let err = PasswordHash::parse(&capped.replace("200000", "200001")).unwrap_err();
        assert!(err.contains("at most 200000"), "{err}");
    }

    #[test]
    fn unknown_users_cost_the_same_rounds() {
        let hash = |iterations| PasswordHash {
            iterations,
            salt: vec![1; SALT_LEN],
            hash: [2; 32],
        };
        let user = |name: &str, iterations| User {
            name: name.into(),
            password: hash(iterations),
            role: "read".into(),
        };
        let cfg = AuthConfig {
            users: vec![user("alice", 20_000), user("bob", 30_000)],
            ..AuthConfig::default()
        };
        let (found, target) = cfg.login_target("alice");
        assert_eq!(
            (found.map(|u| u.name.as_str()), target.iterations),
            (Some("alice"), 20_000)
        );
        let (found, target) = cfg.login_target("mallory");
        assert!(found.is_none());
        assert_eq!((target.iterations, target.salt.len()), (30_000, SALT_LEN));
        assert!(!target.verify(""));
    }

    #[test]
    fn sessions_and_tickets() {
        let now = Instant::now();
        let mut s = Sessions::default();
        let p = Principal {
            name: "u".into(),
            role: "admin".into(),
            ambient: true,
        };
        let id = s
            .create(SessionKind::Login, p.clone(), Duration::from_secs(60), now)
            .unwrap();
        assert_eq!(s.lookup(&id, SessionKind::Login, now), Some(p.clone()));
        assert_eq!(s.lookup(&id, SessionKind::Ticket, now), None);
        assert_eq!(
            s.lookup(&id, SessionKind::Login, now + Duration::from_secs(61)),
            None
        );
        let t = s
            .create(SessionKind::Ticket, p.clone(), Duration::from_secs(30), now)
            .unwrap();
        assert!(s.lookup(&t, SessionKind::Ticket, now).is_some());
        s.remove(&t);
        assert!(s.lookup(&t, SessionKind::Ticket, now).is_none());
    }

    #[test]
    fn limits_count_ipv6_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(PeerId::Ip(a).limit_key(), PeerId::Ip(b).limit_key());
        assert_ne!(PeerId::Ip(a).limit_key(), PeerId::Ip(other).limit_key());
        assert_eq!(
            PeerId::Ip(a).limit_key(),
            PeerId::Ip("2001:db8:1:2::".parse().unwrap())
        );
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            PeerId::Ip(mapped).limit_key(),
            PeerId::Ip("192.0.2.7".parse().unwrap())
        );
        let v4 = PeerId::Ip("192.0.2.7".parse().unwrap());
        assert_eq!(v4.limit_key(), v4);
        assert_eq!(PeerId::Uid(1000).limit_key(), PeerId::Uid(1000));
    }

    #[test]
    fn ubus_answers() {
        assert!(parse_ubus_access(br#"{"access": true}"#));
        assert!(!parse_ubus_access(br#"{"access": false}"#));
        assert!(!parse_ubus_access(b"Command failed: Not found"));
    }
}

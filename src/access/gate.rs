//! Auth and policy for one request head: is the Host ours, who is asking,
//! is the browser's Origin allowed, which route is it, may this role use it,
//! and does its body need checking. Pure decisions; the connection acts.

use std::time::Instant;

use crate::access::auth::{
    looks_like_rpcd_session, parse_authorization, parse_cookie, parse_subprotocol, PeerId, Principal,
    SessionKind, Sessions, COOKIE, SESSION_SECRET_LEN,
};
use crate::access::policy::{check_build_query, Denial, Policy};
use crate::access::route::{match_route, BodyCheck, Guard, Matched, Route};
use crate::config::Config;
use crate::http::request::{RequestBody, RequestHead, Upgrade};
use crate::tls::cert_names::CertNames;

/// A request we answer with an error instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// The route pattern, once known, for the audit line.
    pub route: &'static str,
    pub rule: &'static str,
    pub field: String,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, rule: &'static str, field: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            route: "-",
            rule,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The policy's denial of a request to `route`, naming its rule.
    pub fn denied(route: &'static str, d: Denial) -> Refusal {
        let status = if d.rule == "body_size" { 413 } else { 403 };
        let field = if d.field.is_empty() || d.message.contains(&d.field) {
            String::new()
        } else {
            format!(" (field {})", d.field)
        };
        Refusal {
            route,
            ..Refusal::new(
                status,
                d.rule,
                &d.field,
                format!("denied by rule {}: {}{field}", d.rule, d.message),
            )
        }
    }

    /// Dry-run mode waves through policy denials only: never missing
    /// credentials, cross-site requests or foreign hosts.
    pub fn is_policy(&self) -> bool {
        matches!(self.status, 403 | 413) && !matches!(self.rule, "csrf" | "origin" | "cors" | "host")
    }
}

/// The host part of a `Host` header value, lower-cased, without the port.
fn host_name(value: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(value).ok()?.trim().to_ascii_lowercase();
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        return Some(format!("[{}]", &rest[..end]));
    }
    Some(match s.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => s,
    })
}

/// DNS rebinding needs a name: IP literals, localhost and configured names
/// are fine, any other name is not.
pub fn host_allowed(head: &RequestHead, allowed: &[String]) -> bool {
    let Some(value) = head.header("host") else {
        return true;
    };
    let Some(host) = host_name(value) else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>().is_ok()
        || host == "localhost"
        || host.ends_with(".localhost")
        || allowed.contains(&host)
}

/// The request's `Origin` if it is allowed: listed in the config, or the
/// same origin as the `Host` it was sent to.
pub fn allowed_origin(head: &RequestHead, cors: &[String]) -> Option<String> {
    let origin = std::str::from_utf8(head.header("origin")?).ok()?.trim();
    if cors.iter().any(|c| c == origin) {
        return Some(origin.to_string());
    }
    let host = std::str::from_utf8(head.header("host")?).ok()?.trim();
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host));
    same.then(|| origin.to_string())
}

/// Whether the one-time ticket a browser brings to the UI may sign it in.
/// Any page could send its visitor there with a ticket of its author's,
/// and the visitor would go on working as that author, in containers the
/// author can read. So the navigation must be typed in or come from the UI
/// itself (`Sec-Fetch-Site`, which browsers send only to https and
/// loopback), or start on a page of a configured CORS origin (its
/// `Referer`): LuCI's must be one for it to ask for the ticket at all. The
/// gateway's own host does not count: a container's web page published on
/// another port of the router is there, and the UI's pages send no
/// `Referer`. A browser that names no page is refused too: any page can
/// hide its `Referer`, and LuCI's never does (https LuCI cannot even fetch
/// a ticket from an http gateway).
pub fn may_sign_in_by_ticket(head: &RequestHead, cors: &[String]) -> bool {
    let from_cors_origin = || {
        head.header("referer")
            .and_then(|r| origin_of(std::str::from_utf8(r).ok()?))
            .is_some_and(|o| cors.iter().any(|c| c == o))
    };
    match head.header("sec-fetch-site") {
        Some(b"none" | b"same-origin") => true,
        None | Some(b"same-site" | b"cross-site") => from_cors_origin(),
        Some(_) => false,
    }
}

/// The `scheme://authority` a URL starts with.
fn origin_of(url: &str) -> Option<&str> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    url.get(..scheme.len() + "://".len() + authority)
}

/// Whether a browser page may make this request. One that changes state
/// (any method but GET and HEAD, any upgrade) with a foreign `Origin` is
/// refused whoever makes it: a page on any site can reach a gateway on
/// loopback or the LAN, where without configured credentials it is the
/// anonymous admin, and a token given to one site's pages must not work
/// from another's. A cookie principal needs an allowed `Origin` even when
/// there is none, because browsers send the cookie by themselves. The
/// docker CLI sends no `Origin`. This is the only Origin rule: the API, our
/// endpoints, consoles and the login (which makes a cookie, and so is not
/// `ambient` yet) all use it.
pub fn check_origin(head: &RequestHead, ambient: bool, cors: &[String]) -> Result<(), Refusal> {
    let state_changing = !matches!(head.method.as_str(), "GET" | "HEAD") || head.upgrade.is_some();
    if !state_changing || allowed_origin(head, cors).is_some() {
        return Ok(());
    }
    let foreign = head.header("origin").is_some();
    if foreign && head.upgrade == Some(Upgrade::WebSocket) {
        return Err(Refusal::new(
            403,
            "origin",
            "Origin",
            "WebSocket from an origin that is not allowed",
        ));
    }
    if ambient {
        return Err(Refusal::new(
            403,
            "csrf",
            "Origin",
            "cross-site request refused: Origin missing or not allowed",
        ));
    }
    if foreign {
        return Err(Refusal::new(
            403,
            "origin",
            "Origin",
            "cross-site request refused: Origin not allowed",
        ));
    }
    Ok(())
}

/// Headers that let an allowed origin read the reply.
pub fn cors_headers(origin: &str) -> String {
    format!(
        "Access-Control-Allow-Origin: {origin}\r\nAccess-Control-Allow-Credentials: true\r\n\
         Access-Control-Expose-Headers: X-Docker-Container-Path-Stat\r\nVary: Origin\r\n"
    )
}

/// A CORS preflight: `OPTIONS` with `Origin` and the method it asks for.
pub fn is_preflight(head: &RequestHead) -> bool {
    head.method == "OPTIONS"
        && head.header("origin").is_some()
        && head.header("access-control-request-method").is_some()
}

/// What a preflight's answer adds to the CORS headers every reply to an
/// allowed origin carries.
pub const PREFLIGHT_HEADERS: &str = "Access-Control-Allow-Methods: GET, POST, PUT, DELETE, HEAD\r\n\
     Access-Control-Allow-Headers: Content-Type, X-Registry-Auth, X-Requested-With, Authorization\r\n\
     Access-Control-Max-Age: 600\r\n";

pub enum Authn {
    Principal(Principal),
    /// The bearer may be an rpcd session id we have to ask about.
    AskRpcd(String),
    Missing,
    Invalid,
}

/// Finds the credential of a request and the principal it stands for; a
/// client without one may stand for itself: a unix-socket client by its
/// uid, a TLS client by its verified certificate.
pub fn authenticate(
    head: &RequestHead,
    peer: PeerId,
    cert: Option<&CertNames>,
    cfg: &Config,
    sessions: &Sessions,
    now: Instant,
) -> Authn {
    if cfg.is_open() {
        return Authn::Principal(Principal {
            name: "anonymous".into(),
            role: "admin".into(),
            ambient: false,
        });
    }
    if let Some(value) = head.header("authorization") {
        let Some(bearer) = parse_authorization(value) else {
            return Authn::Invalid;
        };
        return bearer_principal(&bearer, cfg, sessions, now);
    }
    if head.upgrade == Some(Upgrade::WebSocket) {
        if let Some((token, _)) = head.header("sec-websocket-protocol").and_then(parse_subprotocol) {
            return bearer_principal(&token, cfg, sessions, now);
        }
        if let Some(ticket) = ticket(head) {
            return match sessions.lookup(&ticket, SessionKind::Ticket, now) {
                Some(p) => Authn::Principal(p),
                None => Authn::Invalid,
            };
        }
    }
    if let Some(cookie) = head.header("cookie").and_then(|c| parse_cookie(c, COOKIE)) {
        return match bound_secret(cookie, head).and_then(|s| sessions.lookup(&s, SessionKind::Login, now)) {
            Some(p) => Authn::Principal(p),
            None => Authn::Invalid,
        };
    }
    let itself = match peer {
        PeerId::Uid(uid) => cfg.auth.unix_peer(uid),
        PeerId::Ip(_) => cert.and_then(|c| cfg.auth.cert_principal(c)),
    };
    itself.map_or(Authn::Missing, Authn::Principal)
}

/// The header in which the web UI sends its half of a login session's
/// secret.
pub const BINDING_HEADER: &str = "x-dockermand-binding";

/// A login session's secret: the cookie's half and the binding, the half
/// the page keeps and sends in `BINDING_HEADER`. Browsers send a cookie to
/// every port of its host, so a web page a container publishes on another
/// port gets the cookie, and may set one; the binding is kept in the
/// page's storage, which browsers keep per origin, port included. A cookie
/// alone is no session, and one planted by another page has no binding.
pub fn cookie_session(head: &RequestHead) -> Option<String> {
    bound_secret(head.header("cookie").and_then(|c| parse_cookie(c, COOKIE))?, head)
}

/// The session secret of the cookie's half `cookie` and the request's
/// binding.
fn bound_secret(cookie: String, head: &RequestHead) -> Option<String> {
    let binding = std::str::from_utf8(head.header(BINDING_HEADER)?).ok()?.trim();
    // Each is half of what `Sessions::create` makes: no other split.
    let half = |s: &str| s.len() == SESSION_SECRET_LEN / 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (half(&cookie) && half(binding)).then(|| cookie + binding)
}

/// The one-time ticket a WebSocket handshake, or a browser opening the
/// UI, carries in its query, if any. It is spent once the request has been
/// looked at, whatever the answer.
pub fn ticket(head: &RequestHead) -> Option<String> {
    let opens_ui = head.method == "GET" && head.path() == crate::local::UI;
    if head.upgrade != Some(Upgrade::WebSocket) && !opens_ui {
        return None;
    }
    query_param(&head.target, "ticket")
}

/// The request target as logs get it: a ticket in it is a credential until
/// spent, and logs may leave the router.
pub fn target_without_ticket(head: &RequestHead) -> std::borrow::Cow<'_, str> {
    match ticket(head).filter(|t| !t.is_empty()) {
        Some(t) => head.target.replace(&t, "-").into(),
        None => head.target.as_str().into(),
    }
}

fn bearer_principal(secret: &str, cfg: &Config, sessions: &Sessions, now: Instant) -> Authn {
    if let Some(t) = cfg.auth.find_token(secret) {
        return Authn::Principal(Principal {
            name: format!("token:{}", t.name),
            role: t.role.clone(),
            ambient: false,
        });
    }
    if cfg.auth.rpcd.is_some() && looks_like_rpcd_session(secret) {
        return match sessions.lookup(secret, SessionKind::Rpcd, now) {
            Some(p) => Authn::Principal(p),
            None => Authn::AskRpcd(secret.to_string()),
        };
    }
    Authn::Invalid
}

/// The first value of query parameter `name` (no decoding needed for the
/// hex secrets it carries).
pub fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// What a permitted request still needs before it is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub route: &'static Route,
    /// The body must be read and checked against this policy first.
    pub check: Option<(BodyCheck, Policy)>,
}

/// Decides whether `principal` may send this request to dockerd.
pub fn authorize(head: &RequestHead, principal: &Principal, cfg: &Config) -> Result<Pass, Refusal> {
    check_origin(head, principal.ambient, &cfg.cors_origins)?;
    let route = match match_route(&head.method, &head.target) {
        Ok(Matched::Route(r)) => r,
        Ok(Matched::NoRoute) => {
            return Err(Refusal::new(
                403,
                "no_route",
                "path",
                "no such Docker API route; unknown routes are denied",
            ))
        }
        Err(e) => return Err(Refusal::new(400, "path", "path", e.message())),
    };
    let Some(role) = cfg.auth.role(&principal.role) else {
        return Err(Refusal::new(
            403,
            "role",
            "role",
            format!("unknown role {:?}", principal.role),
        ));
    };
    if !role.allows(&head.method, route.class) {
        return Err(Refusal {
            route: route.pattern,
            ..Refusal::new(
                403,
                "role",
                route.class.name(),
                format!(
                    "role {} may not use {} {} ({})",
                    role.name, route.method, route.pattern, route.class
                ),
            )
        });
    }
    let Some(policy) = &role.policy else {
        return Ok(Pass { route, check: None });
    };
    if head.body != RequestBody::None {
        body_content_type(head).map_err(|d| Refusal::denied(route.pattern, d))?;
    }
    guard(head, route, policy).map_err(|d| Refusal::denied(route.pattern, d))?;
    Ok(Pass {
        route,
        check: route.body.map(|kind| (kind, policy.clone())),
    })
}

/// A checked role's body must not be a form: Go reads form values from the
/// body of any request, whatever its route, and they override the query the
/// policy checked. Go finds the media type after trimming Unicode spaces
/// and lower-casing in Unicode (`İ` is `i`), so only a single, plain ASCII
/// `Content-Type` is read here, and anything else is refused.
fn body_content_type(head: &RequestHead) -> Result<(), Denial> {
    let mut values = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_slice());
    let Some(value) = values.next() else {
        return Ok(());
    };
    let refuse = |why: &str| Err(Denial::new("content_type", "Content-Type", why));
    if values.next().is_some() {
        return refuse("more than one Content-Type");
    }
    if value
        .iter()
        .any(|b| !b.is_ascii() || (b.is_ascii_control() && *b != b'\t'))
    {
        return refuse("Content-Type must be plain ASCII");
    }
    let media = value.trim_ascii_start().to_ascii_lowercase();
    if media.starts_with(b"application/x-www-form-urlencoded") || media.starts_with(b"multipart/form-data") {
        return Err(Denial::new(
            "form_body",
            "Content-Type",
            "form-encoded bodies are not accepted",
        ));
    }
    Ok(())
}

/// What a checked role's request head must satisfy beyond its class.
fn guard(head: &RequestHead, route: &Route, policy: &Policy) -> Result<(), Denial> {
    match route.guard {
        Guard::None => Ok(()),
        Guard::NoBody if head.body == RequestBody::None || head.body == RequestBody::Length(0) => Ok(()),
        Guard::NoBody => Err(Denial::new(
            "start_body",
            "body",
            "this request must not carry a body (old APIs read a host config from it)",
        )),
        Guard::BuildQuery => check_build_query(&head.target, policy),
        Guard::Opaque => Err(Denial::new(
            "opaque",
            route.pattern,
            "the policy cannot inspect this request; it needs a role without body checks (admin)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::tests::head;
    use crate::tls::cert_names::CertNames;

    #[test]
    fn hosts() {
        let allowed = vec!["router.lan".to_string()];
        for ok in [
            "127.0.0.1:2375",
            "[::1]:2375",
            "192.168.1.1",
            "api.moby.localhost",
            "localhost:1",
            "Router.LAN:80",
        ] {
            let h = head(&format!("GET / HTTP/1.1\r\nHost: {ok}\r\n\r\n"));
            assert!(host_allowed(&h, &allowed), "{ok}");
        }
        for bad in ["evil.example", "evil.example:2375", "router.lan.evil"] {
            let h = head(&format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n"));
            assert!(!host_allowed(&h, &allowed), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let cors = vec!["https://router.lan".to_string()];
        let h = head("GET / HTTP/1.1\r\nHost: x\r\nOrigin: https://router.lan\r\n\r\n");
        assert_eq!(allowed_origin(&h, &cors).as_deref(), Some("https://router.lan"));
        let h = head("GET / HTTP/1.1\r\nHost: 10.0.0.1:2375\r\nOrigin: http://10.0.0.1:2375\r\n\r\n");
        assert!(allowed_origin(&h, &cors).is_some());
        let h = head("GET / HTTP/1.1\r\nHost: 10.0.0.1:2375\r\nOrigin: http://evil.example\r\n\r\n");
        assert!(allowed_origin(&h, &cors).is_none());
        let h = head("GET / HTTP/1.1\r\nHost: x\r\nOrigin: https://router.lan.evil\r\n\r\n");
        assert!(allowed_origin(&h, &cors).is_none());
    }

    #[test]
    fn ticket_sign_ins_come_from_the_ui_itself_or_a_cors_origin() {
        let cors = vec!["http://192.168.1.1".to_string()];
        let ui = "GET /_dockermand/ui/?ticket=t HTTP/1.1\r\nHost: 192.168.1.1:2375\r\n";
        let may = |headers: &str| may_sign_in_by_ticket(&head(&format!("{ui}{headers}\r\n")), &cors);
        for ok in [
            "Sec-Fetch-Site: none\r\n",
            "Sec-Fetch-Site: same-origin\r\n",
            // LuCI on the router's port 80: same-site, or cross-site for
            // another name of the router; no Sec-Fetch-Site over plain http
            "Sec-Fetch-Site: same-site\r\nReferer: http://192.168.1.1/\r\n",
            "Sec-Fetch-Site: cross-site\r\nReferer: http://192.168.1.1/cgi-bin/luci/admin\r\n",
            "Referer: http://192.168.1.1?x\r\n",
        ] {
            assert!(may(ok), "{ok:?}");
        }
        for bad in [
            // a page that hides its Referer
            "",
            "Sec-Fetch-Site: cross-site\r\n",
            "Sec-Fetch-Site: same-site\r\n",
            "Sec-Fetch-Site: cross-site\r\nReferer: http://evil.example/\r\n",
            "Referer: http://evil.example/\r\n",
            // a container's page published on another port of the router
            "Referer: http://192.168.1.1:8080/\r\n",
            // the gateway's own host is not enough either
            "Referer: http://192.168.1.1:2375/\r\n",
            "Referer: http://192.168.1.1.evil.example/\r\n",
            "Referer: http://192.168.1.1@evil.example/\r\n",
            "Referer: https://192.168.1.1/\r\n",
            "Referer: //192.168.1.1/\r\n",
            "Sec-Fetch-Site: Same-Origin\r\n",
            "Sec-Fetch-Site: elsewhere\r\n",
        ] {
            assert!(!may(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_cookie_session_needs_both_halves() {
        let session =
            |headers: &str| cookie_session(&head(&format!("GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n")));
        let (a, b) = ("0123456789abcdef01234567", "89abcdef0123456789abcdef");
        assert_eq!(
            session(&format!(
                "Cookie: theme=dark; dockermand_session={a}\r\nX-Dockermand-Binding: {b}\r\n"
            )),
            Some(format!("{a}{b}"))
        );
        for lacking in [
            format!("Cookie: dockermand_session={a}\r\n"),
            format!("X-Dockermand-Binding: {b}\r\n"),
            format!("Cookie: other={a}\r\nX-Dockermand-Binding: {b}\r\n"),
            // the whole secret in the cookie, or another split
            format!("Cookie: dockermand_session={a}{b}\r\nX-Dockermand-Binding: \r\n"),
            format!(
                "Cookie: dockermand_session={a}8\r\nX-Dockermand-Binding: {}\r\n",
                &b[1..]
            ),
            format!(
                "Cookie: dockermand_session={a}\r\nX-Dockermand-Binding: {}zz\r\n",
                &b[2..]
            ),
        ] {
            assert_eq!(session(&lacking), None, "{lacking:?}");
        }
    }

    #[test]
    fn logs_get_no_ticket() {
        let logged = |request: &str| target_without_ticket(&head(request)).into_owned();
        assert_eq!(
            logged("GET /_dockermand/ui/?ticket=abc123 HTTP/1.1\r\nHost: x\r\n\r\n"),
            "/_dockermand/ui/?ticket=-"
        );
        let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13";
        assert_eq!(
            logged(&format!("GET /_dockermand/containers/c/console?tty=1&ticket=abc123 HTTP/1.1\r\nHost: x\r\n{ws}\r\n\r\n")),
            "/_dockermand/containers/c/console?tty=1&ticket=-"
        );
        // only where a ticket is one
        assert_eq!(
            logged("GET /containers/json?ticket=abc123 HTTP/1.1\r\nHost: x\r\n\r\n"),
            "/containers/json?ticket=abc123"
        );
        assert_eq!(
            logged("GET /_dockermand/ui/?ticket= HTTP/1.1\r\nHost: x\r\n\r\n"),
            "/_dockermand/ui/?ticket="
        );
    }

    #[test]
    fn queries() {
        assert_eq!(
            query_param("/x?a=1&ticket=ab12", "ticket").as_deref(),
            Some("ab12")
        );
        assert_eq!(query_param("/x?xticket=1", "ticket"), None);
    }

    fn cfg() -> Config {
        let mut c = Config::default();
        c.auth.tokens.push(crate::access::auth::Token {
            name: "t".into(),
            sha256: crate::crypto::sha256::sha256(b"tok"),
            role: "read".into(),
        });
        c
    }

    fn who(role: &str, ambient: bool) -> Principal {
        Principal {
            name: "p".into(),
            role: role.into(),
            ambient,
        }
    }

    #[test]
    fn roles_and_routes() {
        let c = cfg();
        let read = who("read", false);
        assert!(authorize(
            &head("GET /v1.41/containers/json HTTP/1.1\r\nHost: x\r\n\r\n"),
            &read,
            &c
        )
        .is_ok());
        let r = authorize(
            &head("GET /containers/a/export HTTP/1.1\r\nHost: x\r\n\r\n"),
            &read,
            &c,
        );
        assert_eq!(r.map_err(|r| r.rule), Err("role"));
        let r = authorize(
            &head("POST /containers/a/start HTTP/1.1\r\nHost: x\r\n\r\n"),
            &read,
            &c,
        );
        assert_eq!(r.map_err(|r| r.rule), Err("role"));
        let r = authorize(&head("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"), &read, &c);
        assert_eq!(r.map_err(|r| r.rule), Err("no_route"));
        let op = who("operator", false);
        let pass = authorize(
            &head("POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"),
            &op,
            &c,
        )
        .unwrap();
        assert_eq!(pass.check.map(|c| c.0), Some(BodyCheck::ContainerCreate));
        let pass = authorize(
            &head("POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"),
            &who("admin", false),
            &c,
        )
        .unwrap();
        assert!(pass.check.is_none());
    }

    #[test]
    fn cookie_requests_need_an_origin_to_change_state() {
        let c = cfg();
        let p = who("operator", true);
        let r = authorize(
            &head("POST /containers/a/stop HTTP/1.1\r\nHost: x\r\n\r\n"),
            &p,
            &c,
        );
        assert_eq!(r.map_err(|r| r.rule), Err("csrf"));
        let ok = head("POST /containers/a/stop HTTP/1.1\r\nHost: x:1\r\nOrigin: http://x:1\r\n\r\n");
        assert!(authorize(&ok, &p, &c).is_ok());
        assert!(authorize(&head("GET /info HTTP/1.1\r\nHost: x\r\n\r\n"), &p, &c).is_ok());
    }

    /// The rule that refuses `raw` from `p`, if any.
    fn origin_rule(raw: &str, p: &Principal) -> Option<&'static str> {
        check_origin(&head(raw), p.ambient, &cfg().cors_origins)
            .err()
            .map(|r| r.rule)
    }

    #[test]
    fn a_foreign_origin_may_not_change_state_whoever_asks() {
        let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
        let kill = "POST /containers/a/kill HTTP/1.1\r\nHost: x:1\r\n";
        let attach = format!("GET /containers/a/attach/ws HTTP/1.1\r\nHost: x:1\r\n{ws}");
        let anonymous = Principal {
            name: "anonymous".into(),
            role: "admin".into(),
            ambient: false,
        };
        let token = who("admin", false);
        let cookie = who("admin", true);
        for p in [&anonymous, &token, &cookie] {
            let evil = "Origin: http://evil.example\r\n";
            let ours = "Origin: http://x:1\r\n";
            assert_eq!(
                origin_rule(&format!("{kill}{evil}\r\n"), p),
                Some(if p.ambient { "csrf" } else { "origin" })
            );
            assert_eq!(origin_rule(&format!("{attach}{evil}\r\n"), p), Some("origin"));
            assert_eq!(origin_rule(&format!("{kill}{ours}\r\n"), p), None);
            assert_eq!(origin_rule(&format!("{attach}{ours}\r\n"), p), None);
            // Reading is not changing: any origin may (CORS decides who reads).
            let list = format!("GET /containers/json HTTP/1.1\r\nHost: x:1\r\n{evil}\r\n");
            assert_eq!(origin_rule(&list, p), None);
            let head_req = format!("HEAD /containers/a/archive HTTP/1.1\r\nHost: x:1\r\n{evil}\r\n");
            assert_eq!(origin_rule(&head_req, p), None);
        }
        // The anonymous admin of an open gateway goes through it too.
        let r = authorize(
            &head(&format!("{kill}Origin: http://evil.example\r\n\r\n")),
            &anonymous,
            &Config::default(),
        );
        assert_eq!(r.map_err(|r| r.rule), Err("origin"));
        // No Origin at all (the docker CLI): only the cookie needs one.
        for p in [&anonymous, &token] {
            assert_eq!(origin_rule(&format!("{kill}\r\n"), p), None);
            assert_eq!(origin_rule(&format!("{attach}\r\n"), p), None);
        }
        assert_eq!(origin_rule(&format!("{kill}\r\n"), &cookie), Some("csrf"));
        assert_eq!(origin_rule(&format!("{attach}\r\n"), &cookie), Some("csrf"));
    }

    /// Who `authenticate` takes a request from `peer` for, in short.
    fn authn(raw: &str, peer: PeerId, c: &Config) -> String {
        authn_with_cert(raw, peer, None, c)
    }

    fn authn_with_cert(raw: &str, peer: PeerId, cert: Option<&CertNames>, c: &Config) -> String {
        match authenticate(&head(raw), peer, cert, c, &Sessions::default(), Instant::now()) {
            Authn::Principal(p) => format!("{} {}", p.name, p.role),
            Authn::Missing => "missing".into(),
            Authn::Invalid => "invalid".into(),
            Authn::AskRpcd(_) => "rpcd".into(),
        }
    }

    #[test]
    fn a_tls_client_stands_for_its_certificate_only_without_a_credential() {
        let mut c = cfg();
        c.auth.certs.push(crate::access::auth::CertRole {
            name: crate::access::auth::CertName::CommonName("laptop".into()),
            role: "operator".into(),
        });
        let laptop = CertNames {
            common_names: vec!["laptop".into()],
            alt_names: vec![],
        };
        let stranger = CertNames {
            common_names: vec!["stranger".into()],
            alt_names: vec![],
        };
        let ip = PeerId::Ip([192, 0, 2, 1].into());
        let bare = "GET /info HTTP/1.1\r\nHost: x\r\n\r\n";
        let with_token = "GET /info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n";
        let bad_token = "GET /info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\r\n";
        assert_eq!(
            authn_with_cert(bare, ip, Some(&laptop), &c),
            "cert:laptop operator"
        );
        assert_eq!(authn_with_cert(bare, ip, Some(&stranger), &c), "missing");
        assert_eq!(authn_with_cert(bare, ip, None, &c), "missing");
        // A credential in the request speaks for it, even a bad one.
        assert_eq!(authn_with_cert(with_token, ip, Some(&laptop), &c), "token:t read");
        assert_eq!(authn_with_cert(bad_token, ip, Some(&laptop), &c), "invalid");
        c.auth.cert_default_role = Some("read".into());
        assert_eq!(
            authn_with_cert(bare, ip, Some(&stranger), &c),
            "cert:stranger read"
        );
    }

    #[test]
    fn local_users_stand_for_themselves_only_without_a_credential() {
        let mut c = cfg();
        c.auth.unix_peers.push(crate::access::auth::UnixPeer {
            uid: 1000,
            role: "operator".into(),
        });
        let bare = "GET /info HTTP/1.1\r\nHost: x\r\n\r\n";
        let with_token = "GET /info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n";
        let bad_token = "GET /info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\r\n";
        assert_eq!(authn(bare, PeerId::Uid(1000), &c), "uid:1000 operator");
        assert_eq!(authn(bare, PeerId::Uid(0), &c), "missing");
        assert_eq!(authn(bare, PeerId::Ip([127, 0, 0, 1].into()), &c), "missing");
        assert_eq!(authn(with_token, PeerId::Uid(1000), &c), "token:t read");
        assert_eq!(authn(bad_token, PeerId::Uid(1000), &c), "invalid");
    }

    #[test]
    fn form_bodies_are_refused() {
        let h = head("POST /build HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\n");
        let r = authorize(&h, &who("operator", false), &cfg());
        assert_eq!(r.map_err(|r| r.rule), Err("form_body"));
        // Go trims Unicode spaces and folds `İ` to `i`: such a type is refused outright.
        for ct in [
            "\u{a0}application/x-www-form-urlencoded",
            "appl\u{130}cation/x-www-form-urlencoded",
        ] {
            let raw =
                format!("POST /build HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: 3\r\n\r\n");
            let h = head(&raw);
            let r = authorize(&h, &who("operator", false), &cfg());
            assert_eq!(r.map_err(|r| r.rule), Err("content_type"), "{ct}");
        }
        for ct in [
            "multipart/form-data; boundary=x",
            "application/x-tar\r\nContent-Type: text/plain",
        ] {
            let raw =
                format!("POST /build HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: 3\r\n\r\n");
            let r = authorize(&head(&raw), &who("operator", false), &cfg());
            assert!(r.is_err(), "{ct}");
        }
        let tar = head(
            "POST /build HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: 3\r\n\r\n",
        );
        assert!(authorize(&tar, &who("operator", false), &cfg()).is_ok());
    }
}

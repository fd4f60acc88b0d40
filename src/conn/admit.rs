//! What to do with a request head, decided without sockets: the Host check,
//! CORS preflight, our endpoints, authentication, the Origin rule, the route
//! table and the role. `admit` is a pure function of the head and a `View`
//! of the loop's state; the head phase acts on its answer.

use std::time::Instant;

use serde_json::json;

use crate::access::auth::{parse_subprotocol, PeerId, Principal, SessionKind, Sessions};
use crate::access::gate::{self, Authn, Pass, Refusal};
use crate::access::policy::Policy;
use crate::access::route::{BodyCheck, Class};
use crate::config::Config;
use crate::console::websocket::accept_key;
use crate::console::{handshake_reply, ExecRequest};
use crate::http::reply::LocalReply;
use crate::http::request::{RequestBody, RequestHead, Upgrade};
use crate::local::{self, Endpoint};
use crate::tls::cert_names::CertNames;

/// Largest login request body.
const LOGIN_BODY_LIMIT: usize = 4096;

/// The loop's state that admission reads, and nothing it could change.
pub struct View<'a> {
    pub cfg: &'a Config,
    pub sessions: &'a Sessions,
    pub peer: PeerId,
    /// The client's verified TLS certificate.
    pub cert: Option<&'a CertNames>,
    pub now: Instant,
    /// Consoles with a browser right now.
    pub consoles_open: usize,
}

impl<'a> View<'a> {
    /// What `peer`'s request is admitted against, read from the loop.
    pub fn of(ctx: &'a super::Ctx, peer: PeerId, cert: Option<&'a CertNames>) -> View<'a> {
        View {
            cfg: ctx.cfg,
            sessions: ctx.sessions,
            peer,
            cert,
            now: ctx.now,
            consoles_open: ctx.stats.consoles.get(),
        }
    }
}

/// The answer to a request head.
#[derive(Debug)]
pub enum Admission {
    /// Send it to dockerd as it is. `dry_run` is the refusal a dry run
    /// waves through, to be logged as "would deny".
    Forward {
        principal: String,
        hijacks: bool,
        dry_run: Option<Refusal>,
    },
    /// Read the whole (bounded) body first, then decide.
    ReadBody { purpose: Purpose, limit: usize },
    /// The bearer may be a router session: ask rpcd what it may do, then
    /// admit again with `admit_principal`.
    AskRpcd { session: String },
    /// Answer here with a reply that needs no more of the loop's state.
    Reply { reply: LocalReply, close: bool },
    /// Refuse, with an audit line naming the rule.
    Refuse { principal: String, refusal: Refusal },
    /// One of our endpoints that reads or changes the loop's state.
    Endpoint {
        endpoint: Endpoint,
        principal: Principal,
    },
    /// Serve the web UI: an asset, a redirect to it, or why not.
    #[cfg(feature = "ui")]
    Ui(crate::ui::Answer),
    /// Answer the WebSocket handshake and bridge a console (or, without an
    /// exec, the protocol test echo).
    OpenConsole {
        principal: String,
        exec: Option<ExecRequest>,
        handshake: Vec<u8>,
    },
}

/// Why a body is read before anything is forwarded.
#[derive(Debug)]
pub enum Purpose {
    Login,
    Check {
        kind: BodyCheck,
        policy: Policy,
        principal: String,
        route: &'static str,
    },
}

impl Purpose {
    pub fn principal(&self) -> &str {
        match self {
            Purpose::Login => "-",
            Purpose::Check { principal, .. } => principal,
        }
    }

    pub fn route(&self) -> &'static str {
        match self {
            Purpose::Login => "-",
            Purpose::Check { route, .. } => route,
        }
    }
}

/// Unread body bytes would be taken for the next request, so a reply made
/// here to a request with a body closes the connection.
pub fn closes_after_reply(head: &RequestHead) -> bool {
    !head.keep_alive || head.body != RequestBody::None
}

/// Decides what happens to a request whose head has just arrived.
pub fn admit(head: &RequestHead, view: &View) -> Admission {
    let refuse = |refusal| Admission::Refuse {
        principal: "-".into(),
        refusal,
    };
    if !gate::host_allowed(head, &view.cfg.allowed_hosts) {
        return refuse(Refusal::new(
            403,
            "host",
            "Host",
            "Host header not allowed (DNS rebinding protection)",
        ));
    }
    if gate::is_preflight(head) {
        // The CORS headers themselves go on every reply to an allowed origin.
        return match gate::allowed_origin(head, &view.cfg.cors_origins) {
            Some(_) => Admission::Reply {
                reply: LocalReply::json(204, serde_json::Value::Null).with_headers(gate::PREFLIGHT_HEADERS),
                close: closes_after_reply(head),
            },
            None => refuse(Refusal::new(403, "cors", "Origin", "origin not allowed")),
        };
    }
    #[cfg(feature = "ui")]
    if view.cfg.serves_ui() {
        if let Some(answer) = crate::ui::answer(head) {
            return Admission::Ui(answer);
        }
    }
    match local::endpoint(&head.method, head.path()) {
        Some(Endpoint::LoginMethods) => {
            return Admission::Reply {
                reply: local::login_methods(view.cfg),
                close: closes_after_reply(head),
            }
        }
        Some(Endpoint::UiSignIn) if view.cfg.serves_ui() => {
            // A ticket that is not (or no longer) good, or that another
            // page sent the browser with, is spent all the same and leaves
            // the browser at the sign-in screen, without the ticket in its
            // address.
            let owner =
                gate::ticket(head).and_then(|t| view.sessions.lookup(&t, SessionKind::Ticket, view.now));
            let from_another_page =
                owner.is_some() && !gate::may_sign_in_by_ticket(head, &view.cfg.cors_origins);
            if from_another_page {
                log::info!("ticket sign-in refused: the browser came from another page");
            }
            return match owner.filter(|_| !from_another_page) {
                Some(principal) => Admission::Endpoint {
                    endpoint: Endpoint::UiSignIn,
                    principal,
                },
                None => Admission::Reply {
                    reply: LocalReply::redirect(local::UI),
                    close: closes_after_reply(head),
                },
            };
        }
        Some(Endpoint::Login) => {
            // A login makes a cookie: it is not ambient yet, but a foreign
            // page may not make one for its visitor either.
            if let Err(r) = gate::check_origin(head, false, &view.cfg.cors_origins) {
                return refuse(r);
            }
            return Admission::ReadBody {
                purpose: Purpose::Login,
                limit: LOGIN_BODY_LIMIT,
            };
        }
        _ => {}
    }
    let invalid = || {
        refuse(Refusal::new(
            401,
            "auth",
            "Authorization",
            "invalid or expired credentials",
        ))
    };
    match gate::authenticate(head, view.peer, view.cert, view.cfg, view.sessions, view.now) {
        Authn::Principal(p) => admit_principal(head, p, view),
        Authn::AskRpcd(session) => Admission::AskRpcd { session },
        Authn::Missing => refuse(Refusal::new(
            401,
            "auth",
            "Authorization",
            "authentication required",
        )),
        Authn::Invalid => invalid(),
    }
}

/// Decides for a request whose principal is known: our endpoints, or the
/// Docker API if the role and the policy let it through.
pub fn admit_principal(head: &RequestHead, principal: Principal, view: &View) -> Admission {
    let cfg = view.cfg;
    if let Some(endpoint) = local::endpoint(&head.method, head.path()) {
        if let Err(refusal) = gate::check_origin(head, principal.ambient, &cfg.cors_origins) {
            return Admission::Refuse {
                principal: principal.name,
                refusal,
            };
        }
        return match endpoint {
            Endpoint::Echo if cfg.ws_echo => open_console(head, principal, None, view),
            Endpoint::Console(id) => open_console(head, principal, Some(id), view),
            Endpoint::WhoAmI => Admission::Reply {
                reply: LocalReply::json(200, json!({ "name": principal.name, "role": principal.role })),
                close: closes_after_reply(head),
            },
            Endpoint::Status | Endpoint::Metrics | Endpoint::Ticket | Endpoint::Logout => {
                Admission::Endpoint { endpoint, principal }
            }
            _ => Admission::Reply {
                reply: LocalReply::error(404, "no such dockermand endpoint"),
                close: closes_after_reply(head),
            },
        };
    }
    match gate::authorize(head, &principal, cfg) {
        Ok(Pass {
            route,
            check: Some((kind, policy)),
        }) => Admission::ReadBody {
            limit: policy.max_body_bytes,
            purpose: Purpose::Check {
                kind,
                policy,
                principal: principal.name,
                route: route.pattern,
            },
        },
        Ok(Pass { route, check: None }) => Admission::Forward {
            principal: principal.name,
            hijacks: route.hijacks,
            dry_run: None,
        },
        Err(r) if cfg.dry_run && r.is_policy() => Admission::Forward {
            principal: principal.name,
            // The route is unknown or refused: no hijack is expected.
            hijacks: false,
            dry_run: Some(r),
        },
        Err(refusal) => Admission::Refuse {
            principal: principal.name,
            refusal,
        },
    }
}

/// Checks the WebSocket handshake and the role for a console.
fn open_console(
    head: &RequestHead,
    principal: Principal,
    container: Option<String>,
    view: &View,
) -> Admission {
    let error = |status, message: &str| Admission::Reply {
        reply: LocalReply::error(status, message),
        close: true,
    };
    if head.upgrade != Some(Upgrade::WebSocket) {
        return error(400, "this endpoint needs a WebSocket upgrade");
    }
    if head.header("sec-websocket-version") != Some(b"13") {
        return Admission::Reply {
            reply: LocalReply::error(426, "unsupported WebSocket version")
                .with_headers("Sec-WebSocket-Version: 13\r\n"),
            close: true,
        };
    }
    let Some(accept) = head.header("sec-websocket-key").and_then(accept_key) else {
        return error(400, "invalid Sec-WebSocket-Key");
    };
    let protocol = head
        .header("sec-websocket-protocol")
        .and_then(parse_subprotocol)
        .map(|(_, p)| p);
    let handshake = handshake_reply(&accept, protocol.as_deref());
    let Some(container) = container else {
        return Admission::OpenConsole {
            principal: principal.name,
            exec: None,
            handshake,
        };
    };
    let may_exec = view
        .cfg
        .auth
        .role(&principal.role)
        .is_some_and(|r| r.allows("POST", Class::Exec));
    if !may_exec {
        let message = format!("role {} may not open consoles", principal.role);
        return Admission::Refuse {
            principal: principal.name,
            refusal: Refusal::new(403, "role", "exec", message),
        };
    }
    if view.consoles_open >= view.cfg.max_consoles {
        return error(503, "too many consoles open");
    }
    match ExecRequest::parse(&container, &head.target) {
        Ok(exec) => Admission::OpenConsole {
            principal: principal.name,
            exec: Some(exec),
            handshake,
        },
        Err(why) => error(400, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::auth::SessionKind;
    use crate::http::request::tests::head;
    use std::time::Duration;

    /// A config with one operator token, as a router runs it.
    fn secured() -> Config {
        let mut c = Config::default();
        c.auth.tokens.push(crate::access::auth::Token {
            name: "ci".into(),
            sha256: crate::crypto::sha256::sha256(b"s3cret-token-0123456789"),
            role: "operator".into(),
        });
        c
    }

    fn decide(cfg: &Config, sessions: &Sessions, raw: &str) -> Admission {
        let view = View {
            cfg,
            sessions,
            peer: PeerId::Ip("192.0.2.1".parse().unwrap()),
            cert: None,
            now: Instant::now(),
            consoles_open: 0,
        };
        admit(&head(raw), &view)
    }

    fn rule(a: &Admission) -> Option<&'static str> {
        match a {
            Admission::Refuse { refusal, .. } => Some(refusal.rule),
            _ => None,
        }
    }

    const TOKEN: &str = "Authorization: Bearer s3cret-token-0123456789\r\n";

    #[test]
    fn an_open_gateway_forwards_and_marks_hijacks() {
        let cfg = Config::default();
        let s = Sessions::default();
        let a = decide(
            &cfg,
            &s,
            "GET /v1.41/containers/json HTTP/1.1\r\nHost: localhost\r\n\r\n",
        );
        assert!(
            matches!(
                a,
                Admission::Forward {
                    hijacks: false,
                    dry_run: None,
                    ..
                }
            ),
            "{a:?}"
        );
        let a = decide(
            &cfg,
            &s,
            "POST /v1.41/containers/abc/attach?stream=1 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        );
        assert!(matches!(a, Admission::Forward { hijacks: true, .. }), "{a:?}");
        let a = decide(
            &cfg,
            &s,
            "POST /exec/abc/start HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(matches!(a, Admission::Forward { hijacks: true, .. }), "{a:?}");
        let a = decide(
            &cfg,
            &s,
            "GET /containers/abc/attach/ws HTTP/1.1\r\nHost: localhost\r\n\r\n",
        );
        assert!(matches!(a, Admission::Forward { hijacks: false, .. }), "{a:?}");
    }

    #[test]
    fn foreign_hosts_and_missing_credentials_are_refused_before_anything_else() {
        let cfg = secured();
        let s = Sessions::default();
        let a = decide(
            &cfg,
            &s,
            &format!("GET /_ping HTTP/1.1\r\nHost: evil.example\r\n{TOKEN}\r\n"),
        );
        assert_eq!(rule(&a), Some("host"));
        let a = decide(&cfg, &s, "GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert_eq!(rule(&a), Some("auth"));
        let a = decide(
            &cfg,
            &s,
            "GET /_ping HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer nope\r\n\r\n",
        );
        assert_eq!(rule(&a), Some("auth"));
        let a = decide(
            &cfg,
            &s,
            &format!("GET /_ping HTTP/1.1\r\nHost: localhost\r\n{TOKEN}\r\n"),
        );
        assert!(matches!(a, Admission::Forward { .. }), "{a:?}");
    }

    #[test]
    fn checked_bodies_are_read_first_and_system_routes_refused() {
        let cfg = secured();
        let s = Sessions::default();
        let a = decide(
            &cfg,
            &s,
            &format!(
                "POST /containers/create HTTP/1.1\r\nHost: localhost\r\n{TOKEN}Content-Length: 2\r\n\r\n"
            ),
        );
        assert!(
            matches!(
                &a,
                Admission::ReadBody {
                    purpose: Purpose::Check {
                        route: "/containers/create",
                        ..
                    },
                    ..
                }
            ),
            "{a:?}"
        );
        let a = decide(
            &cfg,
            &s,
            &format!("POST /swarm/init HTTP/1.1\r\nHost: localhost\r\n{TOKEN}Content-Length: 2\r\n\r\n"),
        );
        assert_eq!(rule(&a), Some("role"));
    }

    #[test]
    fn the_one_origin_rule_covers_login_endpoints_and_the_api() {
        let cfg = secured();
        let s = Sessions::default();
        let evil = "Origin: https://evil.example\r\n";
        let login =
            format!("POST /_dockermand/login HTTP/1.1\r\nHost: localhost\r\n{evil}Content-Length: 2\r\n\r\n");
        assert_eq!(rule(&decide(&cfg, &s, &login)), Some("origin"));
        let a = decide(
            &cfg,
            &s,
            "POST /_dockermand/login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n",
        );
        assert!(
            matches!(
                a,
                Admission::ReadBody {
                    purpose: Purpose::Login,
                    ..
                }
            ),
            "{a:?}"
        );
        let ticket = format!("POST /_dockermand/ticket HTTP/1.1\r\nHost: localhost\r\n{TOKEN}{evil}\r\n");
        assert_eq!(rule(&decide(&cfg, &s, &ticket)), Some("origin"));
        let stop = format!("POST /containers/a/stop HTTP/1.1\r\nHost: localhost\r\n{TOKEN}{evil}\r\n");
        assert_eq!(rule(&decide(&cfg, &s, &stop)), Some("origin"));
        let read = format!("GET /containers/json HTTP/1.1\r\nHost: localhost\r\n{TOKEN}{evil}\r\n");
        assert!(matches!(decide(&cfg, &s, &read), Admission::Forward { .. }));
    }

    #[test]
    fn preflight_answers_only_allowed_origins() {
        let mut cfg = secured();
        cfg.cors_origins = vec!["http://router.lan".into()];
        let s = Sessions::default();
        let ask = |origin: &str| {
            format!("OPTIONS /containers/json HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: GET\r\n\r\n")
        };
        let a = decide(&cfg, &s, &ask("http://router.lan"));
        assert!(
            matches!(&a, Admission::Reply { reply, .. } if reply.status == 204),
            "{a:?}"
        );
        assert_eq!(
            rule(&decide(&cfg, &s, &ask("https://evil.example"))),
            Some("cors")
        );
    }

    #[test]
    fn consoles_need_a_websocket_handshake_a_role_with_exec_and_a_free_slot() {
        let cfg = secured();
        let mut s = Sessions::default();
        let now = Instant::now();
        let reader = Principal {
            name: "r".into(),
            role: "read".into(),
            ambient: false,
        };
        let t = s
            .create(SessionKind::Ticket, reader, Duration::from_secs(30), now)
            .unwrap();
        let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let plain =
            format!("GET /_dockermand/containers/abc/console HTTP/1.1\r\nHost: localhost\r\n{TOKEN}\r\n");
        let a = decide(&cfg, &s, &plain);
        assert!(
            matches!(&a, Admission::Reply { reply, close: true } if reply.status == 400),
            "{a:?}"
        );
        let console = format!(
            "GET /_dockermand/containers/abc/console?cmd=sh HTTP/1.1\r\nHost: localhost\r\n{TOKEN}{ws}\r\n"
        );
        let a = decide(&cfg, &s, &console);
        assert!(
            matches!(&a, Admission::OpenConsole { exec: Some(e), .. } if e.container == "abc"),
            "{a:?}"
        );
        let by_ticket = format!(
            "GET /_dockermand/containers/abc/console?ticket={t} HTTP/1.1\r\nHost: localhost\r\n{ws}\r\n"
        );
        assert_eq!(rule(&decide(&cfg, &s, &by_ticket)), Some("role"));
        let view = View {
            cfg: &cfg,
            sessions: &s,
            peer: PeerId::Ip("192.0.2.1".parse().unwrap()),
            cert: None,
            now,
            consoles_open: cfg.max_consoles,
        };
        let a = admit(&head(&console), &view);
        assert!(
            matches!(&a, Admission::Reply { reply, .. } if reply.status == 503),
            "{a:?}"
        );
    }

    #[test]
    fn a_dry_run_forwards_policy_refusals_but_never_missing_credentials() {
        let mut cfg = secured();
        cfg.dry_run = true;
        let s = Sessions::default();
        let a = decide(
            &cfg,
            &s,
            &format!("POST /swarm/init HTTP/1.1\r\nHost: localhost\r\n{TOKEN}Content-Length: 2\r\n\r\n"),
        );
        assert!(
            matches!(&a, Admission::Forward { dry_run: Some(r), .. } if r.rule == "role"),
            "{a:?}"
        );
        let a = decide(
            &cfg,
            &s,
            "POST /swarm/init HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n",
        );
        assert_eq!(rule(&a), Some("auth"));
    }
}

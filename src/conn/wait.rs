//! Phases that wait for a helper off the loop: rpcd, asked what a router
//! session may do or whether a router user's password is right, and the
//! hashing worker, checking a login's password.

use mio::unix::SourceFd;
use mio::{Interest, Token};
use serde_json::json;

use super::admit::{admit_principal, View};
use super::{Connection, Ctx, Phase, Request};
use crate::access::auth::{
    parse_ubus_access, parse_ubus_login, Credential, LoginRequest, Principal, SessionKind, COOKIE, RPCD_CACHE,
};
use crate::access::gate::Refusal;
use crate::access::login::{self, Verdict};
use crate::access::rpcd::{AccessCheck, UbusCall, Unavailable};
use crate::http::reply::LocalReply;
use crate::looptime::Work;

pub struct RpcdWait {
    pub(super) req: Request,
    call: UbusCall,
    check: AccessCheck,
    /// The router user signing in, whose new session is being asked about.
    signing_in: Option<String>,
}

impl RpcdWait {
    /// Stops watching the child and reaps it.
    pub(super) fn stop(&mut self, ctx: &mut Ctx) {
        if let Some(fd) = self.check.fd() {
            let _ = ctx.registry.deregister(&mut SourceFd(&fd));
        }
        self.check.reap();
    }
}

pub struct LoginWait {
    pub(super) req: Request,
    job: u64,
    /// The user logging in, if the name is known (an unknown name is
    /// hashed all the same and fails).
    user: Option<(String, String)>,
}

impl Connection {
    pub(super) fn rpcd_unavailable(&mut self, ctx: &mut Ctx, req: &Request, why: &str) -> Phase {
        let r = Refusal::new(503, "rpcd", "Authorization", why);
        self.refuse(ctx, req, "-", r)
    }

    pub(super) fn ask_rpcd(
        &mut self,
        ctx: &mut Ctx,
        req: Request,
        call: UbusCall,
        signing_in: Option<String>,
    ) -> Phase {
        let Some(rpcd) = &ctx.cfg.auth.rpcd else {
            return self.unauthorized(ctx, &req, "invalid or expired credentials");
        };
        let ubus = &mut *ctx.ubus;
        let spawned = ctx.stats.loop_time.timed(Work::Spawn, || ubus.spawn(rpcd, &call));
        let check = match spawned {
            Ok(c) => c,
            Err(Unavailable::Busy) => {
                return self.rpcd_unavailable(ctx, &req, "the router's session service is busy; try again");
            }
            Err(Unavailable::Spawn(e)) => {
                log::error!("cannot run {}: {e}", rpcd.ubus);
                return self.rpcd_unavailable(ctx, &req, "the router's session service is unavailable");
            }
        };
        if let Some(fd) = check.fd() {
            let token = Token(self.base_token.0 + 2);
            if ctx
                .registry
                .register(&mut SourceFd(&fd), token, Interest::READABLE)
                .is_err()
            {
                return self.rpcd_unavailable(ctx, &req, "the router's session service is unavailable");
            }
        }
        self.deadline = Some(ctx.now + ctx.cfg.header_timeout);
        Phase::Rpcd(Box::new(RpcdWait {
            req,
            call,
            check,
            signing_in,
        }))
    }

    pub(super) fn rpcd(&mut self, ctx: &mut Ctx, mut wait: Box<RpcdWait>) -> Phase {
        let Some(output) = wait.check.poll() else {
            return Phase::Rpcd(wait);
        };
        wait.stop(ctx);
        let RpcdWait {
            req,
            call,
            signing_in,
            ..
        } = *wait;
        let (session, function) = match call {
            UbusCall::Login { username, .. } => {
                let login = parse_ubus_login(&output);
                // Counted against its peer since it started.
                ctx.logins.limiter.settle(self.peer_id, login.is_some(), ctx.now);
                let Some(session) = login else {
                    return self.wrong_password(ctx, &req);
                };
                let call = UbusCall::Access {
                    session,
                    function: "write",
                };
                return self.ask_rpcd(ctx, req, call, Some(username));
            }
            UbusCall::Access { session, function } => (session, function),
        };
        let role = match (parse_ubus_access(&output), function) {
            (true, "write") => "operator",
            (true, _) => "read",
            (false, "write") => {
                let call = UbusCall::Access {
                    session,
                    function: "read",
                };
                return self.ask_rpcd(ctx, req, call, signing_in);
            }
            (false, _) if signing_in.is_some() => {
                return self.unauthorized(ctx, &req, "this router user may not use Docker");
            }
            (false, _) => {
                ctx.ubus.refused(&session, ctx.now);
                return self.unauthorized(ctx, &req, "invalid or expired credentials");
            }
        };
        if let Some(username) = signing_in {
            let principal = Principal {
                name: format!("router:{username}"),
                role: role.into(),
                ambient: true,
            };
            return self.signed_in(ctx, &req, principal);
        }
        let principal = Principal {
            name: format!("rpcd:{}", &session[..8.min(session.len())]),
            role: role.into(),
            ambient: false,
        };
        ctx.sessions.insert(
            &session,
            SessionKind::Rpcd,
            principal.clone(),
            RPCD_CACHE,
            ctx.now,
        );
        let admission = admit_principal(
            &req.head,
            principal,
            &View::of(ctx, self.peer_id, self.cert.as_deref()),
        );
        self.act(ctx, req, admission)
    }

    /// Starts a login: its password is hashed on the worker, and
    /// `login_hashed` answers it.
    pub(super) fn login(&mut self, ctx: &mut Ctx, req: Request, body: &[u8]) -> Phase {
        let peer = self.peer_id;
        if let Err(refused) = ctx.logins.check(peer, ctx.now) {
            return self.login_refused(ctx, &req, refused);
        }
        let credential = serde_json::from_slice(body)
            .ok()
            .and_then(LoginRequest::credential);
        let (username, password) = match credential {
            None => {
                ctx.logins.limiter.fail_now(peer, ctx.now);
                return self.wrong_password(ctx, &req);
            }
            Some(Credential::Token(token)) => return self.token_login(ctx, req, &token),
            Some(Credential::Router { username, password }) => {
                return self.router_login(ctx, req, username, password)
            }
            Some(Credential::Password { username, password }) => (username, password),
        };
        let (user, against) = ctx.cfg.auth.login_target(&username);
        let user = user.map(|u| (u.name.clone(), u.role.clone()));
        match ctx
            .logins
            .submit(self.base_token, peer, password, against, user.is_some(), ctx.now)
        {
            Ok(job) => {
                self.deadline = Some(ctx.now + ctx.cfg.header_timeout);
                Phase::Login(Box::new(LoginWait { req, job, user }))
            }
            Err(refused) => self.login_refused(ctx, &req, refused),
        }
    }

    /// A pasted API token traded for a session cookie. A token is long and
    /// random: checking it needs no worker.
    fn token_login(&mut self, ctx: &mut Ctx, req: Request, token: &str) -> Phase {
        let Some(t) = ctx.cfg.auth.find_token(token) else {
            ctx.logins.limiter.fail_now(self.peer_id, ctx.now);
            return self.wrong_password(ctx, &req);
        };
        let principal = Principal {
            name: format!("token:{}", t.name),
            role: t.role.clone(),
            ambient: true,
        };
        self.signed_in(ctx, &req, principal)
    }

    /// A router user's password, checked by rpcd (`ubus call session
    /// login`); the failure limit counts it from the start.
    fn router_login(&mut self, ctx: &mut Ctx, req: Request, username: String, password: String) -> Phase {
        if ctx.cfg.auth.rpcd.is_none() {
            let r = Refusal::new(
                400,
                "login",
                "account",
                "router accounts are not enabled (auth.rpcd)",
            );
            return self.refuse(ctx, &req, "-", r);
        }
        // rpcd gets C strings: it would check "root" for "root\0…",
        // and the rest would end up in the principal's name and logs.
        if username.chars().any(char::is_control) || password.contains('\0') {
            ctx.logins.limiter.fail_now(self.peer_id, ctx.now);
            return self.wrong_password(ctx, &req);
        }
        let phase = self.ask_rpcd(ctx, req, UbusCall::Login { username, password }, None);
        if matches!(phase, Phase::Rpcd(_)) {
            ctx.logins.limiter.begin_elsewhere(self.peer_id, ctx.now);
        }
        phase
    }

    fn login_refused(&mut self, ctx: &mut Ctx, req: &Request, refused: login::Refused) -> Phase {
        let r = match refused {
            login::Refused::RateLimited => Refusal::new(
                429,
                "login_rate",
                "username",
                "too many failed logins; try again later",
            ),
            login::Refused::Busy => Refusal::new(
                503,
                "login_busy",
                "password",
                "too many logins at once; try again",
            ),
        };
        self.refuse(ctx, req, "-", r)
    }

    fn wrong_password(&mut self, ctx: &mut Ctx, req: &Request) -> Phase {
        let r = Refusal::new(401, "login", "password", "wrong user name or password");
        self.refuse(ctx, req, "-", r)
    }

    /// The worker checked a password; `verdict` may be for a login this
    /// connection gave up on (timed out), which is then ignored.
    pub fn login_hashed(&mut self, ctx: &mut Ctx, verdict: Verdict) {
        let wait = match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Login(wait) if wait.job == verdict.job => wait,
            phase => {
                self.phase = phase;
                return;
            }
        };
        self.phase = self.login_answer(ctx, *wait, verdict.matched);
        self.drive(ctx);
    }

    fn login_answer(&mut self, ctx: &mut Ctx, wait: LoginWait, matched: bool) -> Phase {
        let LoginWait { req, user, .. } = wait;
        let Some((name, role)) = user.filter(|_| matched) else {
            return self.wrong_password(ctx, &req);
        };
        let principal = Principal {
            name: format!("user:{name}"),
            role,
            ambient: true,
        };
        self.signed_in(ctx, &req, principal)
    }

    /// Answers a login that succeeded with the principal and its cookie.
    fn signed_in(&mut self, ctx: &mut Ctx, req: &Request, principal: Principal) -> Phase {
        log::info!("{} login as {} ({})", self.peer, principal.name, principal.role);
        let (name, role) = (principal.name.clone(), principal.role.clone());
        let reply = self.session_cookie(ctx, principal, |binding| {
            LocalReply::json(200, json!({ "name": name, "role": role, "binding": binding }))
        });
        self.log_local(req, reply.status);
        let close = !req.head.keep_alive;
        self.reply_to(ctx, req, reply, close)
    }

    /// Makes a login session for `principal`. Its secret comes in two
    /// halves: the cookie, which `reply(binding)` sets, and the binding it
    /// hands the page itself (`gate::cookie_session`).
    pub(super) fn session_cookie(
        &mut self,
        ctx: &mut Ctx,
        principal: Principal,
        reply: impl FnOnce(&str) -> LocalReply,
    ) -> LocalReply {
        let ttl = ctx.cfg.auth.session_ttl;
        match ctx.sessions.create(SessionKind::Login, principal, ttl, ctx.now) {
            Ok(secret) => {
                let (cookie, binding) = secret.split_at(secret.len() / 2);
                reply(binding).with_headers(&format!(
                    "Set-Cookie: {COOKIE}={cookie}; {}; Max-Age={}\r\n",
                    self.cookie_attributes(),
                    ttl.as_secs()
                ))
            }
            Err(_) => LocalReply::error(503, "no randomness available"),
        }
    }
}

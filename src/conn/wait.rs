//! Phases that wait for a helper off the loop: rpcd, asked what a router
//! session may do, and the hashing worker, checking a login's password.

use mio::unix::SourceFd;
use mio::{Interest, Token};
use serde_json::json;

use super::admit::{admit_principal, View};
use super::{Connection, Ctx, Phase, Request};
use crate::access::auth::{LoginRequest, Principal, SessionKind, COOKIE, RPCD_CACHE};
use crate::access::gate::Refusal;
use crate::access::login::{self, Verdict};
use crate::access::rpcd::{AccessCheck, Unavailable};
use crate::http::reply::LocalReply;
use crate::looptime::Work;

pub struct RpcdWait {
    pub(super) req: Request,
    session: String,
    check: AccessCheck,
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
        session: String,
        function: &'static str,
    ) -> Phase {
        let Some(rpcd) = &ctx.cfg.auth.rpcd else {
            return self.unauthorized(ctx, &req, "invalid or expired credentials");
        };
        let ubus = &mut *ctx.ubus;
        let spawned = ctx
            .stats
            .loop_time
            .timed(Work::Spawn, || ubus.spawn(rpcd, &session, function));
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
        Phase::Rpcd(Box::new(RpcdWait { req, session, check }))
    }

    pub(super) fn rpcd(&mut self, ctx: &mut Ctx, mut wait: Box<RpcdWait>) -> Phase {
        let Some(access) = wait.check.poll() else {
            return Phase::Rpcd(wait);
        };
        wait.stop(ctx);
        let RpcdWait { req, session, check } = *wait;
        let role = match (access, check.function) {
            (true, "write") => "operator",
            (true, _) => "read",
            (false, "write") => return self.ask_rpcd(ctx, req, session, "read"),
            (false, _) => {
                ctx.ubus.refused(&session, ctx.now);
                return self.unauthorized(ctx, &req, "invalid or expired credentials");
            }
        };
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
        let Ok(LoginRequest { username, password }) = serde_json::from_slice(body) else {
            ctx.logins.limiter.fail_now(peer, ctx.now);
            return self.wrong_password(ctx, &req);
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
            role: role.clone(),
            ambient: true,
        };
        let ttl = ctx.cfg.auth.session_ttl;
        let reply = match ctx.sessions.create(SessionKind::Login, principal, ttl, ctx.now) {
            Ok(id) => LocalReply::json(200, json!({ "name": name, "role": role })).with_headers(&format!(
                "Set-Cookie: {COOKIE}={id}; {}; Max-Age={}\r\n",
                self.cookie_attributes(),
                ttl.as_secs()
            )),
            Err(_) => LocalReply::error(503, "no randomness available"),
        };
        log::info!("{} login as {name} ({role})", self.peer);
        self.log_local(&req, reply.status);
        let close = !req.head.keep_alive;
        self.reply_to(ctx, &req, reply, close)
    }
}

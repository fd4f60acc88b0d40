//! Answers made here: our endpoints, refusals with their audit line, error
//! replies; the local phase that writes them, and the linger phase that
//! lets the last of them arrive before the connection closes.

use serde_json::json;

use super::{Connection, Ctx, Phase, Request};
use crate::access::auth::{Principal, SessionKind, COOKIE};
use crate::access::gate::{self, Refusal};
use crate::http::reply::LocalReply;
use crate::local::{self, AuthFigures, Endpoint};
use crate::net::outbox::Outbox;

/// How much a closing connection may send before it is cut.
const LINGER_BYTES: usize = 1024 * 1024;
/// How long a WebSocket ticket stays valid.
const TICKET_TTL: std::time::Duration = std::time::Duration::from_secs(30);

pub struct Local {
    out: Outbox,
    close: bool,
    /// A UI asset's body, written after `out` (the head).
    #[cfg(feature = "ui")]
    asset: Option<crate::ui::send::AssetBody>,
}

impl Connection {
    /// Our endpoints that read or change the loop's state.
    pub(super) fn endpoint(
        &mut self,
        ctx: &mut Ctx,
        req: &Request,
        ep: Endpoint,
        principal: Principal,
    ) -> LocalReply {
        match ep {
            Endpoint::Status => local::status(
                ctx.stats,
                ctx.res,
                ctx.intake,
                ctx.cfg,
                &auth_figures(ctx),
                &ctx.tls_figures(),
                ctx.now,
            ),
            Endpoint::Metrics => local::metrics(
                ctx.stats,
                ctx.res,
                ctx.intake,
                &auth_figures(ctx),
                &ctx.tls_figures(),
                ctx.now,
            ),
            Endpoint::Ticket => {
                match ctx
                    .sessions
                    .create(SessionKind::Ticket, principal, TICKET_TTL, ctx.now)
                {
                    Ok(t) => {
                        LocalReply::json(200, json!({ "ticket": t, "expires_in": TICKET_TTL.as_secs() }))
                    }
                    Err(_) => LocalReply::error(503, "no randomness available"),
                }
            }
            // Admitted only when the UI is served.
            #[cfg(feature = "ui")]
            Endpoint::UiSignIn => {
                let principal = Principal {
                    ambient: true,
                    ..principal
                };
                let cors_origins = ctx.cfg.cors_origins.clone();
                self.session_cookie(ctx, principal, |binding| {
                    crate::ui::sign_in_page(binding, &cors_origins)
                })
            }
            Endpoint::Logout => {
                if let Some(secret) = gate::cookie_session(&req.head) {
                    ctx.sessions.remove(&secret);
                }
                LocalReply::json(200, json!({ "message": "logged out" })).with_headers(&format!(
                    "Set-Cookie: {COOKIE}=; {}; Max-Age=0\r\n",
                    self.cookie_attributes()
                ))
            }
            _ => LocalReply::error(404, "no such dockermand endpoint"),
        }
    }

    pub(super) fn unauthorized(&mut self, ctx: &mut Ctx, req: &Request, why: &str) -> Phase {
        let r = Refusal::new(401, "auth", "Authorization", why);
        self.refuse(ctx, req, "-", r)
    }

    /// Logs a denial on one line and answers it.
    pub(super) fn refuse(&mut self, ctx: &mut Ctx, req: &Request, principal: &str, r: Refusal) -> Phase {
        self.audit(ctx, req, principal, &r, false);
        // Docker's error form; the rule and field let the web UI say which
        // part of a request was refused (Docker clients read the message).
        let mut reply = LocalReply::json(
            r.status,
            json!({ "message": r.message, "rule": r.rule, "field": r.field }),
        );
        if r.status == 401 {
            reply = reply.with_headers("WWW-Authenticate: Bearer realm=\"dockermand\"\r\n");
        }
        let close = super::admit::closes_after_reply(&req.head);
        self.reply_to(ctx, req, reply, close)
    }

    pub(super) fn audit(&mut self, ctx: &mut Ctx, req: &Request, principal: &str, r: &Refusal, dry: bool) {
        ctx.stats.deny(r.rule);
        log::warn!(
            "{} principal={} addr={} method={} path={} route={} rule={} field={} status={}",
            if dry { "would deny" } else { "deny" },
            principal,
            self.peer,
            req.head.method,
            req.head.path(),
            r.route,
            r.rule,
            r.field,
            r.status
        );
    }

    pub(super) fn log_local(&self, req: &Request, status: u16) {
        log::info!(
            "{} \"{} {}\" {status} local",
            self.peer,
            req.head.method,
            gate::target_without_ticket(&req.head)
        );
    }

    /// A reply to `req`: an allowed browser origin may read it.
    pub(super) fn reply_to(&mut self, ctx: &mut Ctx, req: &Request, reply: LocalReply, close: bool) -> Phase {
        let reply = match &req.cors {
            Some(origin) => reply.with_headers(&gate::cors_headers(origin)),
            None => reply,
        };
        self.reply(ctx, reply, close)
    }

    pub(super) fn reply_error(&mut self, ctx: &mut Ctx, status: u16, message: &str, close: bool) -> Phase {
        self.reply(ctx, LocalReply::error(status, message), close)
    }

    pub(super) fn reply(&mut self, ctx: &mut Ctx, reply: LocalReply, close: bool) -> Phase {
        let out = Outbox::new(reply.encode(close, self.answering_head));
        self.deadline = Some(ctx.now + ctx.cfg.header_timeout);
        Phase::Local(Box::new(Local {
            out,
            close,
            #[cfg(feature = "ui")]
            asset: None,
        }))
    }

    /// Answers a request for the web UI.
    #[cfg(feature = "ui")]
    pub(super) fn ui_reply(&mut self, ctx: &mut Ctx, req: &Request, answer: crate::ui::Answer) -> Phase {
        use crate::ui::{self, Answer};
        let close = super::admit::closes_after_reply(&req.head);
        let reply = match answer {
            Answer::Asset { asset, gzip, fresh } => {
                self.log_local(req, if fresh { 304 } else { 200 });
                let out = Outbox::new(ui::asset_head(asset, gzip, fresh, &ctx.cfg.cors_origins, close));
                let asset = (!fresh && !self.answering_head).then(|| ui::send::AssetBody::new(asset, gzip));
                // The largest asset, to a slow phone, in one idle timeout.
                self.deadline = Some(ctx.now + ctx.cfg.idle_timeout);
                return Phase::Local(Box::new(Local { out, close, asset }));
            }
            Answer::Redirect(to) => LocalReply::redirect(to),
            Answer::NotFound => LocalReply::error(404, "no such file in the web UI"),
            Answer::Method => LocalReply::error(405, "the web UI is read with GET"),
        };
        self.log_local(req, reply.status);
        let reply = reply.with_headers(&ui::security_headers(&ctx.cfg.cors_origins));
        self.reply(ctx, reply, close)
    }

    pub(super) fn write_local(&mut self, ctx: &mut Ctx, mut l: Box<Local>) -> Phase {
        if l.out.flush(&mut self.front).is_err() {
            return Phase::Closed;
        }
        #[cfg(feature = "ui")]
        if let (true, Some(asset)) = (l.out.is_empty(), &mut l.asset) {
            use crate::ui::send::Progress;
            let before = *ctx.slow_spent;
            let written = asset.write(&mut self.front, ctx.res, ctx.slow_spent, super::SLOW_SLICE);
            let inflating = *ctx.slow_spent - before;
            if !inflating.is_zero() {
                ctx.stats
                    .loop_time
                    .work(crate::looptime::Work::Inflate, inflating);
            }
            match written {
                Err(_) => return Phase::Closed,
                Ok(Progress::Done) => l.asset = None,
                Ok(Progress::Blocked) => return Phase::Local(l),
                Ok(Progress::Again) => {
                    self.rerun = true;
                    return Phase::Local(l);
                }
            }
        }
        if !l.out.is_empty() {
            Phase::Local(l)
        } else if l.close || ctx.shutting_down {
            self.finish(ctx, self.said_close)
        } else {
            self.next_request(ctx)
        }
    }

    pub(super) fn linger(&mut self, ctx: &mut Ctx, mut discarded: usize) -> Phase {
        self.retire_upstream(ctx);
        discarded += std::mem::take(&mut self.early).len();
        while self.front.readable {
            match self.front.read(&mut ctx.res.scratch) {
                Ok(Some(0)) | Err(_) => return Phase::Closed,
                Ok(Some(n)) => {
                    discarded += n;
                    if discarded > LINGER_BYTES {
                        return Phase::Closed;
                    }
                }
                Ok(None) => break,
            }
        }
        Phase::Linger { discarded }
    }
}

/// The sizes of the authentication tables and queues, for our endpoints.
fn auth_figures(ctx: &Ctx) -> AuthFigures {
    AuthFigures {
        sessions: ctx.sessions.count(),
        login_peers: ctx.logins.limiter.len(),
        login_queue: ctx.logins.queued(),
        logins_hashed: ctx.logins.hashed,
        login_rounds: ctx.logins.rounds,
        ubus_running: ctx.ubus.running(),
        ubus_spawns: ctx.ubus.spawns,
        ubus_refused: ctx.ubus.refused_len(),
        ubus_refused_hits: ctx.ubus.refused_hits,
    }
}

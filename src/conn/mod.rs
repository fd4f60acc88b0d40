//! One client connection and the upstream connection serving it, driven as
//! an explicit state machine by readiness events.
//!
//! `Head` → `Exchange` (request and response relayed concurrently) → `Head`
//! again for keep-alive, or `Tunnel` after an upgrade or hijack, or `Local`
//! for replies made here. Closing goes through `Linger`, so an error reply is
//! not destroyed by a reset when unread input is left behind.

use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use serde_json::json;

use crate::access::auth::{
    parse_cookie, parse_subprotocol, without_token_subprotocols, LoginRequest, PeerId, Principal,
    SessionKind, Sessions, COOKIE, RPCD_CACHE,
};
use crate::access::gate::{self, Authn, Pass, Refusal};
use crate::access::login::{self, Logins, Verdict};
use crate::access::policy::{check_body, Policy};
use crate::access::route::{BodyCheck, Class};
use crate::access::rpcd::{AccessCheck, Ubus, Unavailable};
use crate::config::Config;
use crate::console::reaper::Reaper;
use crate::console::websocket::accept_key;
use crate::console::{handshake_reply, Console, ExecRequest, Io, Keepalive, Outcome as ConsoleOutcome};
use crate::http::chunked::{self, ChunkedTracker};
use crate::http::reply::LocalReply;
use crate::http::request::{parse_request_head, Limits, RequestBody, RequestHead, Upgrade};
use crate::http::response::{parse_response_head, ResponseBody};
use crate::http::HeadError;
use crate::local::{self, AuthFigures, Endpoint};
use crate::looptime::Work;
use crate::net::slots::Slots;
use crate::net::socket::Side;
use crate::net::upstream::UpstreamAddr;
use crate::relay::flow::{Flow, FlowError, Framing};
use crate::relay::pool::{largest_raw_body, BodyReservation, Resources, CHUNK};
use crate::stats::Stats;

/// How long a closing connection may keep sending before it is cut.
const LINGER: Duration = Duration::from_secs(2);
/// How much a closing connection may send before it is cut.
const LINGER_BYTES: usize = 1024 * 1024;
/// Reply bodies up to this size that arrive with their head are sent with it.
const INLINE_BODY: u64 = 16 * 1024;
/// Largest login request body.
const LOGIN_BODY_LIMIT: usize = 4096;
/// How long a WebSocket ticket stays valid.
const TICKET_TTL: Duration = Duration::from_secs(30);

/// Everything a connection may use from the event loop while it runs.
pub struct Ctx<'a> {
    pub registry: &'a Registry,
    pub res: &'a mut Resources,
    pub cfg: &'a Config,
    pub stats: &'a mut Stats,
    pub sessions: &'a mut Sessions,
    pub admission: &'a Slots,
    pub logins: &'a mut Logins,
    pub ubus: &'a mut Ubus,
    /// Policy checks run in this loop iteration so far.
    pub policy_spent: &'a mut Duration,
    pub now: Instant,
    pub shutting_down: bool,
}

/// Policy time one loop iteration may start more checks in: bodies that
/// complete together are checked over several iterations, so however many
/// the body budget admits at once, no iteration checks more than a few.
const POLICY_SLICE: Duration = Duration::from_millis(2);

pub struct Connection {
    pub front: Side,
    pub back: Option<Side>,
    /// Client socket; `+1` is the upstream socket, `+2` a helper process.
    base_token: Token,
    pub peer: String,
    peer_id: PeerId,
    /// The request being answered here is a HEAD: replies carry no body.
    answering_head: bool,
    /// A whole request head has arrived on this connection.
    served: bool,
    pub phase: Phase,
    /// When the current phase gives up; `None` while streaming.
    pub deadline: Option<Instant>,
    /// Has work ready that waits for the next loop iteration, not an event.
    rerun: bool,
}

pub enum Phase {
    /// Waiting for a request head; `started` once its first byte arrived.
    Head {
        started: bool,
    },
    /// Waiting for rpcd to say what a LuCI session may do.
    Rpcd(Box<RpcdWait>),
    /// Waiting for the hashing worker to check a login's password.
    Login(Box<LoginWait>),
    /// Reading a body that must be checked before anything is forwarded.
    Body(Box<BodyRead>),
    /// A browser console (or echo) over WebSocket.
    Console(Box<Console>),
    /// The console's browser is gone; its exec is being ended.
    Reap(Box<Reaper>),
    Exchange(Box<Exchange>),
    Tunnel(Box<Tunnel>),
    Local(Box<Local>),
    /// Our sending side is shut; input is discarded until the client closes.
    Linger {
        discarded: usize,
    },
    Closed,
}

/// A parsed request on its way through auth and policy.
pub struct Request {
    head: RequestHead,
    /// The browser origin, if it is allowed to read our replies.
    cors: Option<String>,
}

pub struct RpcdWait {
    req: Request,
    session: String,
    check: AccessCheck,
}

pub struct LoginWait {
    req: Request,
    job: u64,
    /// The user logging in, if the name is known (an unknown name is
    /// hashed all the same and fails).
    user: Option<(String, String)>,
}

enum Purpose {
    Login,
    Check {
        kind: BodyCheck,
        policy: Policy,
        principal: String,
        route: &'static str,
    },
}

impl Purpose {
    fn principal(&self) -> &str {
        match self {
            Purpose::Login => "-",
            Purpose::Check { principal, .. } => principal,
        }
    }

    fn route(&self) -> &'static str {
        match self {
            Purpose::Login => "-",
            Purpose::Check { route, .. } => route,
        }
    }
}

pub struct BodyRead {
    req: Request,
    purpose: Purpose,
    /// Allocated once at its largest size, `max_raw`: it never grows.
    raw: Vec<u8>,
    max_raw: usize,
    /// A checked body's share of the body budget.
    reservation: Option<BodyReservation>,
    framing: Framing,
    /// `100 Continue` still to be written.
    interim: Vec<u8>,
}

/// What the log line and the tunnel decision need to know of the request.
struct Summary {
    cors: Option<String>,
    /// The `dockermand.token.*` subprotocol the client offered (and dockerd
    /// was not shown), to be selected in the 101.
    token_protocol: Option<String>,
    method: String,
    target: String,
    started: Instant,
    keep_alive: bool,
    upgrade: Option<Upgrade>,
    /// attach or exec start: dockerd may hijack with a plain 200.
    hijackable: bool,
    is_head: bool,
    http10: bool,
}

struct Reply {
    status: u16,
    tunnel: bool,
    close_client: bool,
    upstream_keep_alive: bool,
}

pub struct Exchange {
    req: Summary,
    connecting: bool,
    up: Flow,
    down: Flow,
    reply: Option<Reply>,
    eof_forwarded: bool,
    /// Held until the checked body queued for dockerd has been sent.
    body_reservation: Option<BodyReservation>,
}

pub struct Tunnel {
    req: Summary,
    up: Flow,
    down: Flow,
}

pub struct Local {
    out: Vec<u8>,
    written: usize,
    close: bool,
}

/// How an exchange ended, for the log line.
enum End {
    Done,
    Aborted(&'static str),
}

impl Connection {
    pub fn new(
        front: Side,
        base_token: Token,
        peer: String,
        peer_id: PeerId,
        now: Instant,
        cfg: &Config,
    ) -> Self {
        Connection {
            front,
            back: None,
            base_token,
            peer,
            peer_id,
            answering_head: false,
            served: false,
            rerun: false,
            phase: Phase::Head { started: false },
            deadline: Some(now + cfg.header_timeout),
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the connection asked to be driven in the next iteration.
    pub fn take_rerun(&mut self) -> bool {
        std::mem::take(&mut self.rerun)
    }

    /// Idle between requests: safe to drop at shutdown.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head { started: false })
    }

    /// Still sending its first request head: it may be evicted.
    pub fn awaiting_first_head(&self) -> bool {
        !self.served && matches!(self.phase, Phase::Head { .. })
    }

    /// Makes room for a newer client: this connection, still sending its
    /// first head, is told why and closed at once.
    pub fn evict(&mut self, ctx: &mut Ctx) {
        turn_away(
            &mut self.front,
            &mut ctx.res.scratch,
            "too many connections: closed while still sending its request head",
        );
        self.close(ctx);
    }

    /// Records readiness from an event on socket `which` (0 client, 1 upstream).
    pub fn note_event(&mut self, which: usize, ev: &mio::event::Event) {
        let side = match (which, &mut self.phase) {
            (0, _) => Some(&mut self.front),
            (1, _) => self.back.as_mut(),
            (_, Phase::Console(c)) => c.aux_side(),
            (_, Phase::Reap(r)) => r.side(),
            _ => None,
        };
        if let Some(side) = side {
            side.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
            side.writable |= ev.is_writable() || ev.is_write_closed() || ev.is_error();
            side.read_closed |= ev.is_read_closed() || ev.is_error();
        }
    }

    /// Makes all the progress readiness allows.
    pub fn drive(&mut self, ctx: &mut Ctx) {
        loop {
            let before = std::mem::discriminant(&self.phase);
            match std::mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Head { started } => self.read_head(ctx, started),
                Phase::Rpcd(w) => self.rpcd(ctx, w),
                // Only the worker's verdict moves a login on.
                Phase::Login(w) => self.phase = Phase::Login(w),
                Phase::Body(b) => self.body(ctx, b),
                Phase::Console(c) => self.console(ctx, c),
                Phase::Reap(r) => self.reap(ctx, r),
                Phase::Exchange(ex) => self.exchange(ctx, ex),
                Phase::Tunnel(t) => self.tunnel(ctx, t),
                Phase::Local(l) => self.write_local(ctx, l),
                Phase::Linger { discarded } => self.linger(ctx, discarded),
                Phase::Closed => {}
            }
            if std::mem::discriminant(&self.phase) == before || self.is_closed() {
                break;
            }
        }
        if self.is_closed() {
            self.close(ctx);
        }
    }

    /// The deadline passed.
    pub fn on_timeout(&mut self, ctx: &mut Ctx) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Head { started: true } => {
                ctx.stats.rejected += 1;
                self.reply_error(ctx, 408, "timed out reading the request head", true);
                self.drive(ctx);
            }
            Phase::Rpcd(mut wait) => {
                self.stop_rpcd(ctx, &mut wait);
                self.rpcd_unavailable(ctx, &wait.req, "the router's session service did not answer");
                self.drive(ctx);
            }
            // Pings, idle limits and the end of an exec run on time.
            phase @ (Phase::Console(_) | Phase::Reap(_)) => {
                self.phase = phase;
                self.drive(ctx);
            }
            Phase::Login(wait) => {
                // The failure is still counted when the worker is done.
                let r = Refusal::new(503, "login_busy", "password", "the password check took too long");
                self.refuse(ctx, &wait.req, "-", r);
                self.drive(ctx);
            }
            phase => {
                self.phase = phase;
                self.close(ctx);
            }
        }
    }

    /// Releases everything; the socket fds close when the connection drops.
    pub fn close(&mut self, ctx: &mut Ctx) {
        if let Phase::Rpcd(mut w) = std::mem::replace(&mut self.phase, Phase::Closed) {
            self.stop_rpcd(ctx, &mut w);
        }
        self.drop_upstream(ctx);
        let _ = ctx.registry.deregister(&mut self.front.stream);
        self.deadline = None;
    }

    fn drop_upstream(&mut self, ctx: &mut Ctx) {
        if let Some(mut back) = self.back.take() {
            let _ = ctx.registry.deregister(&mut back.stream);
        }
    }

    fn limits(cfg: &Config) -> Limits {
        Limits {
            max_head_bytes: cfg.max_head_bytes,
            max_headers: cfg.max_headers,
        }
    }

    fn read_head(&mut self, ctx: &mut Ctx, started: bool) {
        self.phase = Phase::Head { started };
        if let Some(back) = &self.back {
            if back.readable || back.read_closed {
                self.drop_upstream(ctx);
            }
        }
        if ctx.shutting_down && !started {
            self.phase = Phase::Closed;
            return;
        }
        if !self.front.readable {
            return;
        }
        let limit = ctx.cfg.max_head_bytes.min(ctx.res.scratch.len());
        let n = match self.front.peek(&mut ctx.res.scratch[..limit]) {
            Ok(Some(0)) | Err(_) => {
                self.phase = Phase::Closed;
                return;
            }
            Ok(None) => return,
            Ok(Some(n)) => n,
        };
        match parse_request_head(&ctx.res.scratch[..n], &Self::limits(ctx.cfg)) {
            Ok(None) => {
                // The rest arrives with a new edge; wait for it.
                self.front.readable = false;
                if !started {
                    // A head gets the header timeout from accept or from the
                    // end of the last request, never more: its first byte
                    // only shortens a keep-alive wait.
                    self.phase = Phase::Head { started: true };
                    let head_deadline = ctx.now + ctx.cfg.header_timeout;
                    self.deadline = Some(self.deadline.map_or(head_deadline, |d| d.min(head_deadline)));
                }
            }
            Err(e) => {
                ctx.stats.rejected += 1;
                log::info!("{} rejected request: {}", self.peer, e.message());
                self.reply_error(ctx, e.status(), e.message(), true);
            }
            Ok(Some(head)) => {
                self.served = true;
                if self.front.consume(&mut ctx.res.scratch, head.head_len).is_err() {
                    self.phase = Phase::Closed;
                    return;
                }
                self.start_request(ctx, head);
            }
        }
    }

    fn start_request(&mut self, ctx: &mut Ctx, head: RequestHead) {
        ctx.stats.requests += 1;
        self.answering_head = head.is_head();
        let req = Request {
            cors: gate::allowed_origin(&head, &ctx.cfg.cors_origins),
            head,
        };
        if !gate::host_allowed(&req.head, &ctx.cfg.allowed_hosts) {
            let r = Refusal::new(
                403,
                "host",
                "Host",
                "Host header not allowed (DNS rebinding protection)",
            );
            return self.refuse(ctx, &req, "-", r);
        }
        if gate::is_preflight(&req.head) {
            return match &req.cors {
                Some(origin) => {
                    let reply = LocalReply::json(204, serde_json::Value::Null)
                        .with_headers(&gate::preflight_headers(origin));
                    self.log_local(&req, 204);
                    self.reply(
                        ctx,
                        reply,
                        !req.head.keep_alive || req.head.body != RequestBody::None,
                    );
                }
                None => self.refuse(
                    ctx,
                    &req,
                    "-",
                    Refusal::new(403, "cors", "Origin", "origin not allowed"),
                ),
            };
        }
        match local::endpoint(&req.head.method, req.head.path()) {
            Some(Endpoint::LoginPage) => {
                self.log_local(&req, 200);
                let close = !req.head.keep_alive || req.head.body != RequestBody::None;
                return self.reply(ctx, local::login_page(), close);
            }
            Some(Endpoint::Login) => return self.read_body(ctx, req, Purpose::Login, LOGIN_BODY_LIMIT),
            _ => {}
        }
        match gate::authenticate(&req.head, self.peer_id, ctx.cfg, ctx.sessions, ctx.now) {
            Authn::Principal(p) => self.authorized(ctx, req, p),
            Authn::AskRpcd(session) if ctx.ubus.recently_refused(&session, ctx.now) => {
                self.unauthorized(ctx, &req, "invalid or expired credentials")
            }
            Authn::AskRpcd(session) => self.ask_rpcd(ctx, req, session, "write"),
            Authn::Missing => self.unauthorized(ctx, &req, "authentication required"),
            Authn::Invalid => self.unauthorized(ctx, &req, "invalid or expired credentials"),
        }
    }

    fn rpcd_unavailable(&mut self, ctx: &mut Ctx, req: &Request, why: &str) {
        let r = Refusal::new(503, "rpcd", "Authorization", why);
        self.refuse(ctx, req, "-", r);
    }

    fn unauthorized(&mut self, ctx: &mut Ctx, req: &Request, why: &str) {
        let r = Refusal::new(401, "auth", "Authorization", why);
        self.refuse(ctx, req, "-", r);
    }

    /// An authenticated request: our endpoint, or the Docker API if the
    /// policy lets it through.
    fn authorized(&mut self, ctx: &mut Ctx, req: Request, principal: Principal) {
        if let Some(ep) = local::endpoint(&req.head.method, req.head.path()) {
            return self.local_endpoint(ctx, req, principal, ep);
        }
        match gate::authorize(&req.head, &principal, ctx.cfg) {
            Ok(Pass {
                route,
                check: Some((kind, policy)),
            }) => {
                let limit = policy.max_body_bytes;
                let purpose = Purpose::Check {
                    kind,
                    policy,
                    principal: principal.name,
                    route: route.pattern,
                };
                self.read_body(ctx, req, purpose, limit);
            }
            Ok(Pass { check: None, .. }) => {
                ctx.stats.allowed += 1;
                self.forward(ctx, req, None);
            }
            Err(r) if ctx.cfg.dry_run && r.is_policy() => {
                self.audit(ctx, &req, &principal.name, &r, true);
                self.forward(ctx, req, None);
            }
            Err(r) => self.refuse(ctx, &req, &principal.name, r),
        }
    }

    fn local_endpoint(&mut self, ctx: &mut Ctx, req: Request, principal: Principal, ep: Endpoint) {
        if let Err(r) = gate::check_origin(&req.head, &principal, &ctx.cfg.cors_origins) {
            return self.refuse(ctx, &req, &principal.name, r);
        }
        let reply = match ep {
            Endpoint::Status => local::status(
                ctx.stats,
                ctx.res,
                ctx.admission,
                ctx.cfg,
                &auth_figures(ctx),
                ctx.now,
            ),
            Endpoint::Metrics => {
                local::metrics(ctx.stats, ctx.res, ctx.admission, &auth_figures(ctx), ctx.now)
            }
            Endpoint::WhoAmI => {
                LocalReply::json(200, json!({ "name": principal.name, "role": principal.role }))
            }
            Endpoint::Ticket => {
                let ticket = ctx
                    .sessions
                    .create(SessionKind::Ticket, principal.clone(), TICKET_TTL, ctx.now);
                match ticket {
                    Ok(t) => {
                        LocalReply::json(200, json!({ "ticket": t, "expires_in": TICKET_TTL.as_secs() }))
                    }
                    Err(_) => LocalReply::error(503, "no randomness available"),
                }
            }
            Endpoint::Logout => {
                if let Some(id) = req.head.header("cookie").and_then(|c| parse_cookie(c, COOKIE)) {
                    ctx.sessions.remove(&id);
                }
                LocalReply::json(200, json!({ "message": "logged out" })).with_headers(&format!(
                    "Set-Cookie: {COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\r\n"
                ))
            }
            Endpoint::Echo if ctx.cfg.ws_echo => return self.open_console(ctx, req, principal, None),
            Endpoint::Console(id) => return self.open_console(ctx, req, principal, Some(id)),
            _ => LocalReply::error(404, "no such dockermand endpoint"),
        };
        self.log_local(&req, reply.status);
        let close = !req.head.keep_alive || req.head.body != RequestBody::None;
        let reply = match &req.cors {
            Some(origin) => reply.with_headers(&gate::cors_headers(origin)),
            None => reply,
        };
        self.reply(ctx, reply, close);
    }

    /// Checks the WebSocket handshake and opens an exec console (or, with
    /// no container, the test echo).
    fn open_console(&mut self, ctx: &mut Ctx, req: Request, principal: Principal, container: Option<String>) {
        let head = &req.head;
        if head.upgrade != Some(Upgrade::WebSocket) {
            return self.reply_error(ctx, 400, "this endpoint needs a WebSocket upgrade", true);
        }
        if head.header("sec-websocket-version") != Some(b"13") {
            let reply = LocalReply::error(426, "unsupported WebSocket version")
                .with_headers("Sec-WebSocket-Version: 13\r\n");
            return self.reply(ctx, reply, true);
        }
        let Some(accept) = head.header("sec-websocket-key").and_then(accept_key) else {
            return self.reply_error(ctx, 400, "invalid Sec-WebSocket-Key", true);
        };
        let protocol = head
            .header("sec-websocket-protocol")
            .and_then(parse_subprotocol)
            .map(|(_, p)| p);
        let handshake = handshake_reply(&accept, protocol.as_deref());
        let Some(container) = container else {
            self.log_local(&req, 101);
            self.deadline = None;
            let slot = ctx.stats.consoles.hold();
            self.phase = Phase::Console(Box::new(Console::echo(handshake, slot, ctx.res)));
            return;
        };
        let may_exec = ctx
            .cfg
            .auth
            .role(&principal.role)
            .is_some_and(|r| r.allows("POST", Class::Exec));
        if !may_exec {
            let r = Refusal::new(
                403,
                "role",
                "exec",
                format!("role {} may not open consoles", principal.role),
            );
            return self.refuse(ctx, &req, &principal.name, r);
        }
        if ctx.stats.consoles.get() >= ctx.cfg.max_consoles {
            return self.reply_error(ctx, 503, "too many consoles open", true);
        }
        let exec = match ExecRequest::parse(&container, &head.target) {
            Ok(e) => e,
            Err(why) => return self.reply_error(ctx, 400, why, true),
        };
        if self.back.is_none() {
            match self.connect_upstream(ctx) {
                Ok(side) => self.back = Some(side),
                Err(_) => {
                    ctx.stats.upstream_errors += 1;
                    return self.reply_error(ctx, 502, "cannot connect to the Docker daemon", true);
                }
            }
        }
        log::info!(
            "{} console {} {:?} tty={} for {}",
            self.peer,
            exec.container,
            exec.cmd,
            exec.tty,
            principal.name
        );
        ctx.stats.allowed += 1;
        let local_pids = matches!(ctx.cfg.upstream, UpstreamAddr::Unix(_));
        let keepalive = Keepalive::new(ctx.cfg.console_ping, ctx.cfg.console_idle, ctx.now);
        let slot = ctx.stats.consoles.hold();
        let console = Console::exec(exec, handshake, local_pids, keepalive, slot, ctx.res);
        self.deadline = console.deadline();
        self.phase = Phase::Console(Box::new(console));
    }

    fn console(&mut self, ctx: &mut Ctx, mut c: Box<Console>) {
        let (registry, upstream) = (ctx.registry, &ctx.cfg.upstream);
        let aux_token = Token(self.base_token.0 + 2);
        let mut io = Io {
            front: &mut self.front,
            back: &mut self.back,
            res: ctx.res,
            connect_aux: &mut || connect_aux(registry, upstream, aux_token),
            now: ctx.now,
        };
        match c.drive(&mut io) {
            ConsoleOutcome::Continue => {
                self.deadline = c.deadline();
                self.phase = Phase::Console(c);
            }
            ConsoleOutcome::Fail(status, message) => {
                self.drop_upstream(ctx);
                self.reply_error(ctx, status, &message, true);
            }
            ConsoleOutcome::Done => {
                let reaper = c.finish(&ctx.stats.consoles_ending, ctx.now);
                self.drop_upstream(ctx);
                self.front.shutdown_write();
                match reaper {
                    // The client is done with: only the exec is left.
                    Some(r) => {
                        let _ = ctx.registry.deregister(&mut self.front.stream);
                        self.phase = Phase::Reap(Box::new(r));
                    }
                    None => {
                        self.deadline = Some(ctx.now + LINGER);
                        self.phase = Phase::Linger { discarded: 0 };
                    }
                }
            }
        }
    }

    fn reap(&mut self, ctx: &mut Ctx, mut r: Box<Reaper>) {
        let (registry, upstream) = (ctx.registry, &ctx.cfg.upstream);
        let aux_token = Token(self.base_token.0 + 2);
        let done = r.drive(ctx.now, &mut ctx.res.scratch, &mut || {
            connect_aux(registry, upstream, aux_token)
        });
        if !done {
            self.deadline = Some(r.deadline());
            self.phase = Phase::Reap(r);
        }
    }

    fn connect_upstream(&mut self, ctx: &mut Ctx) -> std::io::Result<Side> {
        let mut side = Side::new(ctx.cfg.upstream.connect()?);
        let token = Token(self.base_token.0 + 1);
        ctx.registry
            .register(&mut side.stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(side)
    }

    fn ask_rpcd(&mut self, ctx: &mut Ctx, req: Request, session: String, function: &'static str) {
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
        self.phase = Phase::Rpcd(Box::new(RpcdWait { req, session, check }));
    }

    fn rpcd(&mut self, ctx: &mut Ctx, mut wait: Box<RpcdWait>) {
        let Some(access) = wait.check.poll() else {
            self.phase = Phase::Rpcd(wait);
            return;
        };
        self.stop_rpcd(ctx, &mut wait);
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
        self.authorized(ctx, req, principal);
    }

    fn stop_rpcd(&mut self, ctx: &mut Ctx, wait: &mut RpcdWait) {
        if let Some(fd) = wait.check.fd() {
            let _ = ctx.registry.deregister(&mut SourceFd(&fd));
        }
        wait.check.reap();
    }

    /// Reads a whole (bounded) request body before deciding on it.
    fn read_body(&mut self, ctx: &mut Ctx, req: Request, purpose: Purpose, limit: usize) {
        let (framing, max_raw) = match req.head.body {
            RequestBody::None => (Framing::Length(0), 0),
            RequestBody::Length(n) if n > limit as u64 => {
                let r = Refusal {
                    route: purpose.route(),
                    ..Refusal::new(413, "body_size", "Content-Length", "request body too large")
                };
                let who = purpose.principal().to_string();
                return self.refuse(ctx, &req, &who, r);
            }
            RequestBody::Length(n) => (Framing::Length(n), n as usize),
            RequestBody::Chunked => (Framing::Chunked(ChunkedTracker::new()), largest_raw_body(limit)),
        };
        // Checked bodies share one budget, taken before the first byte is
        // read; a login body is small. A client that finds the budget spent
        // is told so at once rather than queued: a queue would hold its
        // connection while whoever holds the budget has the header timeout.
        let reservation = match &purpose {
            Purpose::Check { .. } => match ctx.res.body_budget.reserve(max_raw) {
                Some(r) => Some(r),
                None => {
                    log::warn!(
                        "{} \"{} {}\" 503 body budget of {} bytes spent",
                        self.peer,
                        req.head.method,
                        req.head.target,
                        ctx.res.body_budget.limit
                    );
                    let why = "too many request bodies are being checked; try again";
                    return self.reply_error(ctx, 503, why, true);
                }
            },
            Purpose::Login => None,
        };
        let expects = req
            .head
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case(b"100-continue"));
        self.deadline = Some(ctx.now + ctx.cfg.header_timeout);
        self.phase = Phase::Body(Box::new(BodyRead {
            req,
            purpose,
            raw: Vec::with_capacity(max_raw),
            max_raw,
            reservation,
            framing,
            interim: if expects {
                b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()
            } else {
                Vec::new()
            },
        }));
    }

    fn body(&mut self, ctx: &mut Ctx, mut b: Box<BodyRead>) {
        while !b.interim.is_empty() && self.front.writable {
            match self.front.write(&b.interim) {
                Ok(Some(n)) => drop(b.interim.drain(..n)),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        loop {
            let done = match &b.framing {
                Framing::Length(n) => *n == 0,
                Framing::Chunked(t) => t.is_done(),
                Framing::UntilEof => true,
            };
            if done {
                if matches!(b.purpose, Purpose::Check { .. }) && *ctx.policy_spent >= POLICY_SLICE {
                    self.rerun = true;
                    self.phase = Phase::Body(b);
                    return;
                }
                return self.body_complete(ctx, b);
            }
            if !self.front.readable {
                self.phase = Phase::Body(b);
                return;
            }
            let room = b.max_raw - b.raw.len();
            if room == 0 {
                let r = Refusal {
                    route: b.purpose.route(),
                    ..Refusal::new(413, "body_size", "body", "request body too large")
                };
                let who = b.purpose.principal().to_string();
                return self.refuse(ctx, &b.req, &who, r);
            }
            let scratch = &mut ctx.res.scratch;
            let got = match &mut b.framing {
                Framing::Length(n) => {
                    let want = (*n).min(scratch.len() as u64) as usize;
                    match self.front.read(&mut scratch[..want]) {
                        Ok(Some(0)) | Err(_) => return,
                        Ok(Some(k)) => {
                            *n -= k as u64;
                            k
                        }
                        Ok(None) => continue,
                    }
                }
                Framing::Chunked(t) => match self.front.peek(&mut scratch[..room.min(CHUNK)]) {
                    Ok(Some(0)) | Err(_) => return,
                    Ok(Some(k)) => match t.advance(&scratch[..k]) {
                        Ok(used) => used,
                        Err(e) => {
                            ctx.stats.rejected += 1;
                            return self.reply_error(ctx, 400, e.message(), true);
                        }
                    },
                    Ok(None) => continue,
                },
                Framing::UntilEof => 0,
            };
            b.raw.extend_from_slice(&ctx.res.scratch[..got]);
            // Chunked input was only peeked at: take exactly what was used.
            if matches!(b.framing, Framing::Chunked(_))
                && self.front.consume(&mut ctx.res.scratch, got).is_err()
            {
                return;
            }
        }
    }

    fn body_complete(&mut self, ctx: &mut Ctx, b: Box<BodyRead>) {
        let BodyRead {
            mut req,
            purpose,
            raw,
            reservation,
            ..
        } = *b;
        let body = if req.head.body == RequestBody::Chunked {
            let decoded = chunked::decode(&raw);
            drop(raw);
            match decoded {
                Ok(body) => body,
                Err(e) => return self.reply_error(ctx, 400, e.message(), true),
            }
        } else {
            raw
        };
        match purpose {
            Purpose::Login => self.login(ctx, req, &body),
            Purpose::Check {
                kind,
                policy,
                principal,
                route,
            } => {
                let content_type = req.head.header("content-type").map(<[u8]>::to_vec);
                let started = Instant::now();
                let verdict = check_body(kind, content_type.as_deref(), &body, &policy);
                let took = started.elapsed();
                *ctx.policy_spent += took;
                ctx.stats.loop_time.work(Work::Policy, took);
                if let Err(d) = verdict {
                    let r = Refusal::denied(route, d);
                    if !ctx.cfg.dry_run {
                        return self.refuse(ctx, &req, &principal, r);
                    }
                    self.audit(ctx, &req, &principal, &r, true);
                } else {
                    ctx.stats.allowed += 1;
                }
                // dockerd gets exactly the bytes we checked, with a length.
                req.head.headers.retain(|(n, _)| {
                    !(n.eq_ignore_ascii_case("content-length")
                        || n.eq_ignore_ascii_case("transfer-encoding")
                        || n.eq_ignore_ascii_case("expect"))
                });
                req.head
                    .headers
                    .push(("Content-Length".into(), body.len().to_string().into_bytes()));
                req.head.body = RequestBody::Length(body.len() as u64);
                self.forward(ctx, req, Some(body));
                if let Phase::Exchange(ex) = &mut self.phase {
                    ex.body_reservation = reservation;
                }
            }
        }
    }

    /// Starts a login: its password is hashed on the worker, and
    /// `login_hashed` answers it.
    fn login(&mut self, ctx: &mut Ctx, req: Request, body: &[u8]) {
        if req.head.header("origin").is_some() && req.cors.is_none() {
            let r = Refusal::new(403, "csrf", "Origin", "cross-site login refused");
            return self.refuse(ctx, &req, "-", r);
        }
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
                self.phase = Phase::Login(Box::new(LoginWait { req, job, user }));
            }
            Err(refused) => self.login_refused(ctx, &req, refused),
        }
    }

    fn login_refused(&mut self, ctx: &mut Ctx, req: &Request, refused: login::Refused) {
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
        self.refuse(ctx, req, "-", r);
    }

    fn wrong_password(&mut self, ctx: &mut Ctx, req: &Request) {
        let r = Refusal::new(401, "login", "password", "wrong user name or password");
        self.refuse(ctx, req, "-", r);
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
        let LoginWait { req, user, .. } = *wait;
        let Some((name, role)) = user.filter(|_| verdict.matched) else {
            self.wrong_password(ctx, &req);
            return self.drive(ctx);
        };
        let principal = Principal {
            name: format!("user:{name}"),
            role: role.clone(),
            ambient: true,
        };
        let ttl = ctx.cfg.auth.session_ttl;
        let reply = match ctx
            .sessions
            .create(SessionKind::Login, principal.clone(), ttl, ctx.now)
        {
            Ok(id) => LocalReply::json(200, json!({ "name": name, "role": role })).with_headers(&format!(
                "Set-Cookie: {COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}\r\n",
                ttl.as_secs()
            )),
            Err(_) => LocalReply::error(503, "no randomness available"),
        };
        log::info!("{} login as {name} ({role})", self.peer);
        self.log_local(&req, reply.status);
        let reply = match &req.cors {
            Some(origin) => reply.with_headers(&gate::cors_headers(origin)),
            None => reply,
        };
        self.reply(ctx, reply, !req.head.keep_alive);
        self.drive(ctx);
    }

    /// Logs a denial on one line and answers it.
    fn refuse(&mut self, ctx: &mut Ctx, req: &Request, principal: &str, r: Refusal) {
        self.audit(ctx, req, principal, &r, false);
        let mut reply = LocalReply::error(r.status, &r.message);
        if r.status == 401 {
            reply = reply.with_headers("WWW-Authenticate: Bearer realm=\"dockermand\"\r\n");
        }
        if let Some(origin) = &req.cors {
            reply = reply.with_headers(&gate::cors_headers(origin));
        }
        // Unread body bytes would be taken for the next request.
        let close = !req.head.keep_alive || req.head.body != RequestBody::None;
        self.reply(ctx, reply, close);
    }

    fn audit(&mut self, ctx: &mut Ctx, req: &Request, principal: &str, r: &Refusal, dry: bool) {
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

    fn log_local(&self, req: &Request, status: u16) {
        log::info!(
            "{} \"{} {}\" {status} local",
            self.peer,
            req.head.method,
            req.head.target
        );
    }

    fn forward(&mut self, ctx: &mut Ctx, req: Request, body: Option<Vec<u8>>) {
        let Request { mut head, cors } = req;
        if !ctx.cfg.auth.is_open() {
            // Our credentials are not dockerd's business (nor its plugins').
            head.headers.retain(|(n, _)| {
                !n.eq_ignore_ascii_case("authorization") && !n.eq_ignore_ascii_case("cookie")
            });
        }
        // A token subprotocol is ours whether or not auth is on: dockerd never
        // sees it, and we answer it ourselves in the 101.
        let token_protocol = head
            .header("sec-websocket-protocol")
            .and_then(parse_subprotocol)
            .map(|(_, protocol)| protocol);
        head.headers = std::mem::take(&mut head.headers)
            .into_iter()
            .filter_map(|(name, value)| {
                if !name.eq_ignore_ascii_case("sec-websocket-protocol") {
                    return Some((name, value));
                }
                without_token_subprotocols(&value).map(|rest| (name, rest))
            })
            .collect();
        let connecting = self.back.is_none();
        if connecting {
            match self.connect_upstream(ctx) {
                Ok(side) => self.back = Some(side),
                Err(e) => {
                    log::warn!("cannot connect to {}: {e}", ctx.cfg.upstream);
                    self.upstream_unavailable(ctx, &head, "cannot connect to the Docker daemon");
                    return;
                }
            }
        }
        let copy_only = !ctx.res.splice_enabled;
        let framing = match (&body, head.body) {
            (Some(_), _) | (None, RequestBody::None) => Framing::Length(0),
            (None, RequestBody::Length(n)) => Framing::Length(n),
            (None, RequestBody::Chunked) => Framing::Chunked(ChunkedTracker::new()),
        };
        let mut up = Flow::new(framing, copy_only);
        up.queue(&head.encode_upstream());
        if let Some(body) = &body {
            up.queue(body);
        }
        let summary = Summary {
            hijackable: head.method == "POST" && is_hijack_route(head.path()),
            is_head: head.is_head(),
            http10: head.minor_version == 0,
            keep_alive: head.keep_alive,
            upgrade: head.upgrade,
            method: head.method,
            target: head.target,
            started: ctx.now,
            cors,
            token_protocol,
        };
        self.deadline = None;
        self.phase = Phase::Exchange(Box::new(Exchange {
            req: summary,
            connecting,
            up,
            down: Flow::new(Framing::Length(0), copy_only),
            reply: None,
            eof_forwarded: false,
            body_reservation: None,
        }));
    }

    fn upstream_unavailable(&mut self, ctx: &mut Ctx, head: &RequestHead, why: &'static str) {
        ctx.stats.upstream_errors += 1;
        log::info!("{} \"{} {}\" 502 {why}", self.peer, head.method, head.target);
        let close = !head.keep_alive || head.body != RequestBody::None;
        self.reply_error(ctx, 502, why, close);
    }

    fn exchange(&mut self, ctx: &mut Ctx, mut ex: Box<Exchange>) {
        let Some(back) = self.back.as_mut() else {
            return self.end_exchange(ctx, ex, End::Aborted("no upstream"));
        };
        if ex.connecting {
            if !back.writable {
                self.phase = Phase::Exchange(ex);
                return;
            }
            match back.stream.take_error() {
                Ok(None) => ex.connecting = false,
                _ => {
                    ctx.stats.upstream_errors += 1;
                    return self.fail_before_reply(ctx, ex, 502, "cannot connect to the Docker daemon");
                }
            }
        }
        loop {
            let mut progress = false;
            if !ex.up.is_finished() {
                match ex.up.pump(&mut self.front, back, ctx.res) {
                    Ok(p) => {
                        progress |= p;
                        if ex.up.is_finished() {
                            ex.body_reservation = None;
                        }
                    }
                    Err(FlowError::Framing(e)) if ex.reply.is_none() => {
                        ctx.stats.rejected += 1;
                        return self.fail_before_reply(ctx, ex, 400, e.message());
                    }
                    Err(FlowError::Write(_)) if ex.reply.is_none() => {
                        ctx.stats.upstream_errors += 1;
                        return self.fail_before_reply(
                            ctx,
                            ex,
                            502,
                            "the Docker daemon closed the connection",
                        );
                    }
                    Err(e) => return self.end_exchange(ctx, ex, End::Aborted(flow_error("request", &e))),
                }
            }
            if ex.reply.is_none() && back.readable {
                match read_response_head(back, ctx, &mut ex) {
                    Ok(p) => progress |= p,
                    Err(why) => {
                        ctx.stats.upstream_errors += 1;
                        return self.fail_before_reply(ctx, ex, 502, why);
                    }
                }
            }
            match ex.down.pump(back, &mut self.front, ctx.res) {
                Ok(p) => progress |= p,
                Err(e) => return self.end_exchange(ctx, ex, End::Aborted(flow_error("response", &e))),
            }
            // A client that hangs up while waiting cancels the request in
            // dockerd too (as Go's server does), which ends endless streams.
            let tunnel_pending = ex.req.upgrade.is_some() || ex.req.hijackable;
            if self.front.read_closed && ex.up.is_finished() && !ex.eof_forwarded && !tunnel_pending {
                back.shutdown_write();
                ex.eof_forwarded = true;
                progress = true;
            }
            if ex.reply.is_some() && ex.down.is_finished() {
                let tunnel = ex.reply.as_ref().is_some_and(|r| r.tunnel);
                if ex.up.is_finished() || !tunnel {
                    return self.end_exchange(ctx, ex, End::Done);
                }
            }
            if !progress {
                self.phase = Phase::Exchange(ex);
                return;
            }
        }
    }

    /// Something went wrong before any byte of a reply reached the client:
    /// the client gets a clear error instead of a torn connection.
    fn fail_before_reply(&mut self, ctx: &mut Ctx, ex: Box<Exchange>, status: u16, why: &'static str) {
        self.drop_upstream(ctx);
        if ex.reply.is_some() || ex.down.spliced + ex.down.copied > 0 {
            log_exchange(&self.peer, &ex, End::Aborted(why));
            self.phase = Phase::Closed;
            return;
        }
        log::info!(
            "{} \"{} {}\" {status} {why}",
            self.peer,
            ex.req.method,
            ex.req.target
        );
        self.reply_error(ctx, status, why, true);
    }

    fn end_exchange(&mut self, ctx: &mut Ctx, ex: Box<Exchange>, end: End) {
        let aborted = matches!(end, End::Aborted(_));
        log_exchange(&self.peer, &ex, end);
        let Some(reply) = ex.reply.as_ref().filter(|_| !aborted) else {
            self.phase = Phase::Closed;
            return;
        };
        if reply.tunnel {
            self.phase = Phase::Tunnel(Box::new(Tunnel {
                up: Flow::new(Framing::UntilEof, !ctx.res.splice_enabled),
                down: Flow::new(Framing::UntilEof, !ctx.res.splice_enabled),
                req: ex.req,
            }));
            return;
        }
        let request_done = ex.up.is_finished();
        if !(reply.upstream_keep_alive && request_done && !ex.eof_forwarded) || ctx.shutting_down {
            self.drop_upstream(ctx);
        } else if let Some(back) = self.back.as_mut() {
            // From now on any input or hang-up from dockerd means "stale".
            back.readable = false;
        }
        if reply.close_client || !request_done || self.front.read_closed || ctx.shutting_down {
            self.front.shutdown_write();
            self.deadline = Some(ctx.now + LINGER);
            self.phase = Phase::Linger { discarded: 0 };
        } else {
            self.deadline = Some(ctx.now + ctx.cfg.idle_timeout);
            self.phase = Phase::Head { started: false };
        }
    }

    fn tunnel(&mut self, ctx: &mut Ctx, mut t: Box<Tunnel>) {
        let Some(back) = self.back.as_mut() else {
            return;
        };
        loop {
            let mut progress = false;
            let pumped =
                t.up.pump(&mut self.front, back, ctx.res)
                    .and_then(|a| Ok(a | t.down.pump(back, &mut self.front, ctx.res)?));
            match pumped {
                Ok(p) => progress |= p,
                Err(e) => {
                    log::debug!(
                        "{} tunnel {} ended: {}",
                        self.peer,
                        t.req.target,
                        flow_error("tunnel", &e)
                    );
                    return;
                }
            }
            // Half-close passes through: the other side still reads.
            if t.up.is_finished() {
                back.shutdown_write();
            }
            if t.down.is_finished() {
                self.front.shutdown_write();
            }
            if t.up.is_finished() && t.down.is_finished() {
                log::debug!(
                    "{} tunnel {} closed after {}s: {} bytes in, {} out",
                    self.peer,
                    t.req.target,
                    t.req.started.elapsed().as_secs(),
                    t.up.spliced + t.up.copied,
                    t.down.spliced + t.down.copied
                );
                return;
            }
            if !progress {
                self.phase = Phase::Tunnel(t);
                return;
            }
        }
    }

    fn reply_error(&mut self, ctx: &mut Ctx, status: u16, message: &str, close: bool) {
        self.reply(ctx, LocalReply::error(status, message), close);
    }

    fn reply(&mut self, ctx: &mut Ctx, reply: LocalReply, close: bool) {
        let out = reply.encode(close, self.answering_head);
        self.deadline = Some(ctx.now + ctx.cfg.header_timeout);
        self.phase = Phase::Local(Box::new(Local {
            out,
            written: 0,
            close,
        }));
    }

    fn write_local(&mut self, ctx: &mut Ctx, mut l: Box<Local>) {
        while l.written < l.out.len() && self.front.writable {
            match self.front.write(&l.out[l.written..]) {
                Ok(Some(n)) => l.written += n,
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if l.written < l.out.len() {
            self.phase = Phase::Local(l);
        } else if l.close || ctx.shutting_down {
            self.front.shutdown_write();
            self.deadline = Some(ctx.now + LINGER);
            self.phase = Phase::Linger { discarded: 0 };
        } else {
            self.deadline = Some(ctx.now + ctx.cfg.idle_timeout);
            self.phase = Phase::Head { started: false };
        }
    }

    fn linger(&mut self, ctx: &mut Ctx, mut discarded: usize) {
        self.drop_upstream(ctx);
        while self.front.readable {
            match self.front.read(&mut ctx.res.scratch) {
                Ok(Some(0)) | Err(_) => return,
                Ok(Some(n)) => {
                    discarded += n;
                    if discarded > LINGER_BYTES {
                        return;
                    }
                }
                Ok(None) => break,
            }
        }
        self.phase = Phase::Linger { discarded };
    }
}

/// Opens and registers an extra upstream connection for a console's calls.
fn connect_aux(registry: &Registry, upstream: &UpstreamAddr, token: Token) -> std::io::Result<Side> {
    let mut side = Side::new(upstream.connect()?);
    registry.register(&mut side.stream, token, Interest::READABLE | Interest::WRITABLE)?;
    Ok(side)
}

/// Answers a client we will not serve with a 503 and closes our side. The
/// input it already sent is read first, so the close is a FIN that lets the
/// reply arrive rather than a reset that destroys it.
pub fn turn_away(side: &mut Side, scratch: &mut [u8], why: &str) {
    let _ = side.read(scratch);
    let _ = side.write(&LocalReply::error(503, why).encode(true, false));
    side.shutdown_write();
}

/// Reads the response head if it is complete; interim replies are queued
/// for the client and reading goes on.
fn read_response_head(back: &mut Side, ctx: &mut Ctx, ex: &mut Exchange) -> Result<bool, &'static str> {
    let limit = ctx.cfg.max_head_bytes.min(ctx.res.scratch.len());
    let n = match back.peek(&mut ctx.res.scratch[..limit]) {
        Ok(Some(0)) => return Err("the Docker daemon closed the connection without a reply"),
        Ok(Some(n)) => n,
        Ok(None) => return Ok(false),
        Err(_) => return Err("error reading from the Docker daemon"),
    };
    let head = match parse_response_head(&ctx.res.scratch[..n], limit, ctx.cfg.max_headers, ex.req.is_head) {
        Ok(Some(h)) => h,
        Ok(None) => {
            back.readable = false;
            return Ok(false);
        }
        Err(HeadError::TooLarge) => return Err("reply head from the Docker daemon is too large"),
        Err(_) => return Err("malformed reply from the Docker daemon"),
    };
    // A small body that came with the head goes out with it: one read and
    // one write instead of two splices.
    let inline = match head.body {
        ResponseBody::Length(len) if len <= INLINE_BODY && head.head_len + len as usize <= n => len as usize,
        _ => 0,
    };
    let body = ctx.res.scratch[head.head_len..head.head_len + inline].to_vec();
    if back
        .consume(&mut ctx.res.scratch, head.head_len + inline)
        .is_err()
    {
        return Err("error reading from the Docker daemon");
    }
    if head.is_interim() {
        if !ex.req.http10 {
            ex.down.queue(&head.encode_for_client(false, ""));
        }
        return Ok(true);
    }
    let upgraded = head.status == 101;
    if upgraded && ex.req.upgrade.is_none() {
        return Err("unexpected protocol switch from the Docker daemon");
    }
    let hijacked = ex.req.hijackable && head.status == 200 && head.body == ResponseBody::UntilClose;
    let tunnel = upgraded || hijacked;
    let close_client = !tunnel
        && (!ex.req.keep_alive
            || !head.keep_alive && head.body == ResponseBody::UntilClose
            || ctx.shutting_down);
    let mut ours = ex.req.cors.as_deref().map(gate::cors_headers).unwrap_or_default();
    // A browser fails a WebSocket whose handshake selects none of the
    // protocols it offered; dockerd was only offered the others.
    if let Some(protocol) = ex.req.token_protocol.as_deref() {
        if upgraded && head.header("sec-websocket-protocol").is_none() {
            ours.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
        }
    }
    ex.down.queue(&head.encode_for_client(close_client, &ours));
    ex.down.queue(&body);
    ctx.res.bytes.copied += body.len() as u64;
    ex.down.set_framing(match head.body {
        ResponseBody::None => Framing::Length(0),
        ResponseBody::Length(n) => Framing::Length(n - inline as u64),
        ResponseBody::Chunked => Framing::Chunked(ChunkedTracker::new()),
        ResponseBody::UntilClose if tunnel => Framing::Length(0),
        ResponseBody::UntilClose => Framing::UntilEof,
    });
    ex.reply = Some(Reply {
        status: head.status,
        tunnel,
        close_client,
        upstream_keep_alive: head.keep_alive && !tunnel,
    });
    Ok(true)
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

fn log_exchange(peer: &str, ex: &Exchange, end: End) {
    let status = ex.reply.as_ref().map_or(0, |r| r.status);
    let (spliced, copied) = (ex.up.spliced + ex.down.spliced, ex.up.copied + ex.down.copied);
    let path = match (spliced, copied) {
        (0, 0) => "none",
        (_, 0) => "splice",
        (0, _) => "copy",
        _ => "splice+copy",
    };
    let outcome = match end {
        End::Done => "",
        End::Aborted(why) => why,
    };
    log::info!(
        "{peer} \"{} {}\" {status} up={} down={} {}ms {path} {outcome}",
        ex.req.method,
        ex.req.target,
        ex.up.spliced + ex.up.copied,
        ex.down.spliced + ex.down.copied,
        ex.req.started.elapsed().as_millis(),
    );
}

fn flow_error(what: &'static str, e: &FlowError) -> &'static str {
    match (what, e) {
        ("request", FlowError::Truncated) => "client closed during the request body",
        ("response", FlowError::Truncated) => "the Docker daemon closed during the reply",
        (_, FlowError::Framing(_)) => "invalid chunked framing",
        (_, FlowError::Read(_)) => "read error",
        (_, FlowError::Write(_)) => "write error",
        (_, FlowError::Truncated) => "closed",
    }
}

/// `POST .../containers/{id}/attach` and `POST .../exec/{id}/start`, with or
/// without an API version prefix: dockerd hijacks these connections.
fn is_hijack_route(path: &str) -> bool {
    let path = crate::access::route::strip_version(path);
    (path.starts_with("/containers/") && path.ends_with("/attach"))
        || (path.starts_with("/exec/") && path.ends_with("/start"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hijack_routes() {
        assert!(is_hijack_route("/containers/abc/attach"));
        assert!(is_hijack_route("/v1.47/exec/abc/start"));
        assert!(!is_hijack_route("/containers/abc/attach/ws"));
        assert!(!is_hijack_route("/containers/abc/start"));
    }
}

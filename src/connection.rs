//! One client connection and the upstream connection serving it, driven as
//! an explicit state machine by readiness events.
//!
//! `Head` → `Exchange` (request and response relayed concurrently) → `Head`
//! again for keep-alive, or `Tunnel` after an upgrade or hijack, or `Local`
//! for replies made here. Closing goes through `Linger`, so an error reply is
//! not destroyed by a reset when unread input is left behind.

use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};

use crate::chunked::ChunkedTracker;
use crate::config::Config;
use crate::http::HeadError;
use crate::local::{self, Stats};
use crate::pool::Resources;
use crate::relay::{Flow, FlowError, Framing, Side};
use crate::request::{parse_request_head, Limits, RequestBody, RequestHead, Upgrade};
use crate::response::{parse_response_head, ResponseBody};

/// How long a closing connection may keep sending before it is cut.
const LINGER: Duration = Duration::from_secs(2);
/// How much a closing connection may send before it is cut.
const LINGER_BYTES: usize = 1024 * 1024;

/// Everything a connection may use from the event loop while it runs.
pub struct Ctx<'a> {
    pub registry: &'a Registry,
    pub res: &'a mut Resources,
    pub cfg: &'a Config,
    pub stats: &'a mut Stats,
    pub now: Instant,
    pub shutting_down: bool,
}

pub struct Connection {
    pub front: Side,
    pub back: Option<Side>,
    back_token: Token,
    pub peer: String,
    pub phase: Phase,
    /// When the current phase gives up; `None` while streaming.
    pub deadline: Option<Instant>,
}

pub enum Phase {
    /// Waiting for a request head; `started` once its first byte arrived.
    Head {
        started: bool,
    },
    Exchange(Box<Exchange>),
    Tunnel(Box<Tunnel>),
    Local(Box<Local>),
    /// Our sending side is shut; input is discarded until the client closes.
    Linger {
        discarded: usize,
    },
    Closed,
}

/// What the log line and the tunnel decision need to know of the request.
struct Summary {
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
    pub fn new(front: Side, back_token: Token, peer: String, now: Instant, cfg: &Config) -> Self {
        Connection {
            front,
            back: None,
            back_token,
            peer,
            phase: Phase::Head { started: false },
            deadline: Some(now + cfg.header_timeout),
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Idle between requests: safe to drop at shutdown.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head { started: false })
    }

    pub fn holds_upstream(&self) -> bool {
        self.back.is_some()
    }

    /// Records readiness from an event on the client (`front`) or upstream side.
    pub fn note_event(&mut self, front: bool, ev: &mio::event::Event) {
        let side = if front {
            Some(&mut self.front)
        } else {
            self.back.as_mut()
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
        match &self.phase {
            Phase::Head { started: true } => {
                ctx.stats.rejected += 1;
                self.reply_error(ctx, 408, "timed out reading the request head", true);
                self.drive(ctx);
            }
            _ => {
                self.phase = Phase::Closed;
                self.close(ctx);
            }
        }
    }

    /// Releases everything; the socket fds close when the connection drops.
    pub fn close(&mut self, ctx: &mut Ctx) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Exchange(mut ex) => {
                ex.up.release(ctx.res);
                ex.down.release(ctx.res);
            }
            Phase::Tunnel(mut t) => {
                t.up.release(ctx.res);
                t.down.release(ctx.res);
            }
            _ => {}
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
                    self.phase = Phase::Head { started: true };
                    self.deadline = Some(ctx.now + ctx.cfg.header_timeout);
                }
            }
            Err(e) => {
                ctx.stats.rejected += 1;
                log::info!("{} rejected request: {}", self.peer, e.message());
                self.reply_error(ctx, e.status(), e.message(), true);
            }
            Ok(Some(head)) => {
                if self
                    .front
                    .consume(&mut ctx.res.scratch, head.head_len)
                    .is_err()
                {
                    self.phase = Phase::Closed;
                    return;
                }
                self.start_request(ctx, head);
            }
        }
    }

    fn start_request(&mut self, ctx: &mut Ctx, head: RequestHead) {
        ctx.stats.requests += 1;
        if local::is_local(head.path()) {
            let reply = local::answer(&head, ctx.stats, ctx.res, ctx.cfg, ctx.now);
            let close = !head.keep_alive || head.body != RequestBody::None || ctx.shutting_down;
            log::info!(
                "{} \"{} {}\" {} local",
                self.peer,
                head.method,
                head.target,
                reply.status
            );
            self.reply(reply.encode(close), close, ctx);
            return;
        }
        if self.back.is_none() {
            match ctx.cfg.upstream.connect() {
                Ok(stream) => {
                    let mut side = Side::new(stream);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if ctx
                        .registry
                        .register(&mut side.stream, self.back_token, interest)
                        .is_err()
                    {
                        self.upstream_unavailable(ctx, &head, "cannot register upstream socket");
                        return;
                    }
                    self.back = Some(side);
                }
                Err(e) => {
                    log::warn!("cannot connect to {}: {e}", ctx.cfg.upstream);
                    self.upstream_unavailable(ctx, &head, "cannot connect to the Docker daemon");
                    return;
                }
            }
        }
        let copy_only = !ctx.res.splice_enabled;
        let mut up = Flow::new(
            match head.body {
                RequestBody::None => Framing::Length(0),
                RequestBody::Length(n) => Framing::Length(n),
                RequestBody::Chunked => Framing::Chunked(ChunkedTracker::new()),
            },
            copy_only,
        );
        up.queue(&head.encode_upstream());
        let path = head.path();
        let summary = Summary {
            hijackable: head.method == "POST" && is_hijack_route(path),
            is_head: head.is_head(),
            http10: head.minor_version == 0,
            keep_alive: head.keep_alive,
            upgrade: head.upgrade,
            method: head.method,
            target: head.target,
            started: ctx.now,
        };
        self.deadline = None;
        self.phase = Phase::Exchange(Box::new(Exchange {
            req: summary,
            connecting: true,
            up,
            down: Flow::new(Framing::Length(0), copy_only),
            reply: None,
            eof_forwarded: false,
        }));
    }

    fn upstream_unavailable(&mut self, ctx: &mut Ctx, head: &RequestHead, why: &'static str) {
        ctx.stats.upstream_errors += 1;
        log::info!(
            "{} \"{} {}\" 502 {why}",
            self.peer,
            head.method,
            head.target
        );
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
                    return self.fail_before_reply(
                        ctx,
                        ex,
                        502,
                        "cannot connect to the Docker daemon",
                    );
                }
            }
        }
        loop {
            let mut progress = false;
            if !ex.up.is_finished() {
                match ex.up.pump(&mut self.front, back, ctx.res) {
                    Ok(p) => progress |= p,
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
                    Err(e) => {
                        return self.end_exchange(ctx, ex, End::Aborted(flow_error("request", &e)))
                    }
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
                Err(e) => {
                    return self.end_exchange(ctx, ex, End::Aborted(flow_error("response", &e)))
                }
            }
            // A client that hangs up while waiting cancels the request in
            // dockerd too (as Go's server does), which ends endless streams.
            let tunnel_pending = ex.req.upgrade.is_some() || ex.req.hijackable;
            if self.front.read_closed && ex.up.is_finished() && !ex.eof_forwarded && !tunnel_pending
            {
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
    fn fail_before_reply(
        &mut self,
        ctx: &mut Ctx,
        mut ex: Box<Exchange>,
        status: u16,
        why: &'static str,
    ) {
        ex.up.release(ctx.res);
        ex.down.release(ctx.res);
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

    fn end_exchange(&mut self, ctx: &mut Ctx, mut ex: Box<Exchange>, end: End) {
        let aborted = matches!(end, End::Aborted(_));
        log_exchange(&self.peer, &ex, end);
        ex.up.release(ctx.res);
        ex.down.release(ctx.res);
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
                    t.up.release(ctx.res);
                    t.down.release(ctx.res);
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
                t.up.release(ctx.res);
                t.down.release(ctx.res);
                return;
            }
            if !progress {
                self.phase = Phase::Tunnel(t);
                return;
            }
        }
    }

    fn reply_error(&mut self, ctx: &mut Ctx, status: u16, message: &str, close: bool) {
        let bytes = local::error_response(status, message, close);
        self.reply(bytes, close, ctx);
    }

    fn reply(&mut self, out: Vec<u8>, close: bool, ctx: &mut Ctx) {
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

/// Reads the response head if it is complete; interim replies are queued
/// for the client and reading goes on.
fn read_response_head(
    back: &mut Side,
    ctx: &mut Ctx,
    ex: &mut Exchange,
) -> Result<bool, &'static str> {
    let limit = ctx.cfg.max_head_bytes.min(ctx.res.scratch.len());
    let n = match back.peek(&mut ctx.res.scratch[..limit]) {
        Ok(Some(0)) => return Err("the Docker daemon closed the connection without a reply"),
        Ok(Some(n)) => n,
        Ok(None) => return Ok(false),
        Err(_) => return Err("error reading from the Docker daemon"),
    };
    let head = match parse_response_head(
        &ctx.res.scratch[..n],
        limit,
        ctx.cfg.max_headers,
        ex.req.is_head,
    ) {
        Ok(Some(h)) => h,
        Ok(None) => {
            back.readable = false;
            return Ok(false);
        }
        Err(HeadError::TooLarge) => return Err("reply head from the Docker daemon is too large"),
        Err(_) => return Err("malformed reply from the Docker daemon"),
    };
    if back.consume(&mut ctx.res.scratch, head.head_len).is_err() {
        return Err("error reading from the Docker daemon");
    }
    if head.is_interim() {
        if !ex.req.http10 {
            ex.down.queue(&head.encode_for_client(false));
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
    ex.down.queue(&head.encode_for_client(close_client));
    ex.down.set_framing(match head.body {
        ResponseBody::None => Framing::Length(0),
        ResponseBody::Length(n) => Framing::Length(n),
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

fn log_exchange(peer: &str, ex: &Exchange, end: End) {
    let status = ex.reply.as_ref().map_or(0, |r| r.status);
    let (spliced, copied) = (
        ex.up.spliced + ex.down.spliced,
        ex.up.copied + ex.down.copied,
    );
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
    let path = local::strip_version(path);
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

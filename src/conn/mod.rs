//! One client connection and the upstream connection serving it, driven as
//! an explicit state machine by readiness events. Each phase has its own
//! file and its handler returns the next phase; `LIFECYCLE.md` draws the
//! transitions, the deadlines, and who owns what.

mod admit;
mod body;
mod console;
mod exchange;
mod head;
mod reply;
mod tunnel;
mod wait;

use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};

pub use admit::{admit, admit_principal, Admission, Purpose, View};

use crate::access::auth::{PeerId, Sessions};
use crate::access::gate::Refusal;
use crate::access::login::Logins;
use crate::access::rpcd::Ubus;
use crate::config::Config;
use crate::console::reaper::Reaper;
use crate::console::Console;
use crate::http::reply::LocalReply;
use crate::net::idle::IdleUpstreams;
use crate::net::intake::Intake;
use crate::net::socket::Side;
use crate::net::upstream::UpstreamAddr;
use crate::relay::pool::Resources;
use crate::stats::{Stats, TlsFigures};
use crate::tls::cert_names::CertNames;

use body::BodyRead;
use exchange::Exchange;
use reply::Local;
use tunnel::Tunnel;
use wait::{LoginWait, RpcdWait};

/// CPU-bound work one loop iteration does before deferring the rest.
pub const SLOW_SLICE: Duration = Duration::from_millis(2);

/// How long a closing connection may keep sending before it is cut.
const LINGER: Duration = Duration::from_secs(2);

/// Everything a connection may use from the event loop while it runs.
pub struct Ctx<'a> {
    pub registry: &'a Registry,
    pub res: &'a mut Resources,
    pub cfg: &'a Config,
    pub stats: &'a mut Stats,
    pub sessions: &'a mut Sessions,
    pub intake: &'a Intake,
    pub logins: &'a mut Logins,
    pub upstreams: &'a mut IdleUpstreams,
    pub ubus: &'a mut Ubus,
    /// Time spent in this loop iteration so far on CPU-bound work (policy
    /// checks, inflating UI assets); past `SLOW_SLICE` more of it waits
    /// for the next iteration, so that no client holds up the others.
    pub slow_spent: &'a mut Duration,
    pub now: Instant,
    pub shutting_down: bool,
    /// The TLS fronts, whose figures the status endpoints report.
    #[cfg(feature = "tls")]
    pub fronts: &'a crate::tls::fronts::Fronts,
}

impl Ctx<'_> {
    /// Counted only when asked for (status and metrics), not per event.
    pub fn tls_figures(&self) -> TlsFigures {
        #[cfg(feature = "tls")]
        return self.fronts.figures();
        #[cfg(not(feature = "tls"))]
        TlsFigures::default()
    }
}

/// A connection's place in the loop: its slot, and its accept serial, so a
/// slot since reused by another connection is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRef {
    pub slot: usize,
    pub serial: u64,
}

pub struct Connection {
    pub front: Side,
    /// The upstream connection serving the current request.
    pub back: Option<Side>,
    /// An upstream connection kept between requests, for the next one (or,
    /// when this client leaves, for another client).
    idle_back: Option<Side>,
    /// Client socket; `+1` is the upstream socket, `+2` a helper process.
    base_token: Token,
    pub peer: String,
    peer_id: PeerId,
    /// The names of a TLS client's verified certificate, a credential.
    cert: Option<Box<CertNames>>,
    /// The client came through TLS: its session cookie is `Secure`.
    over_tls: bool,
    /// Bytes read from the client ahead of the phase that needs them: a
    /// partial head, or what came after a head (its body, the next
    /// pipelined request, or the first bytes of a tunnel). At most
    /// `max_head_bytes`.
    early: Vec<u8>,
    /// How far `early` has been searched for the end of a head.
    scanned: usize,
    /// The request being answered here is a HEAD: replies carry no body.
    answering_head: bool,
    /// The request asked to close the connection and had no body: once it
    /// is answered, nothing more may come from the client (RFC 9112 §9.6).
    said_close: bool,
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
    /// A request and its reply relayed concurrently.
    Exchange(Box<Exchange>),
    /// After an upgrade or hijack: bytes both ways until both sides close.
    Tunnel(Box<Tunnel>),
    /// A reply made here is being written.
    Local(Box<Local>),
    /// Our sending side is shut; input is discarded until the client closes.
    Linger {
        discarded: usize,
    },
    Closed,
}

/// A parsed request on its way through auth and policy.
pub struct Request {
    head: crate::http::request::RequestHead,
    /// The browser origin, if it is allowed to read our replies.
    cors: Option<String>,
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
            idle_back: None,
            base_token,
            peer,
            peer_id,
            cert: None,
            over_tls: false,
            early: Vec::new(),
            scanned: 0,
            answering_head: false,
            said_close: false,
            served: false,
            rerun: false,
            phase: Phase::Head { started: false },
            deadline: Some(now + cfg.header_timeout),
        }
    }

    /// What the TLS handshake proved about the client, before any of its
    /// requests is read.
    pub fn set_client_cert(&mut self, names: CertNames) {
        self.cert = Some(Box::new(names));
    }

    pub fn set_over_tls(&mut self) {
        self.over_tls = true;
    }

    /// The attributes of our session cookie: a browser that reached us
    /// over TLS must never send it over plain HTTP.
    fn cookie_attributes(&self) -> &'static str {
        if self.over_tls {
            "Path=/; HttpOnly; SameSite=Strict; Secure"
        } else {
            "Path=/; HttpOnly; SameSite=Strict"
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
        matches!(self.phase, Phase::Head { started: false }) && self.early.is_empty()
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
            (1, _) => self.back.as_mut().or(self.idle_back.as_mut()),
            (_, Phase::Console(c)) => c.aux_side(),
            (_, Phase::Reap(r)) => r.side(),
            _ => None,
        };
        if let Some(side) = side {
            side.note(ev);
        }
    }

    /// Makes all the progress readiness allows: each phase's handler runs
    /// and returns the next phase, until one returns its own kind again.
    pub fn drive(&mut self, ctx: &mut Ctx) {
        loop {
            let before = std::mem::discriminant(&self.phase);
            self.phase = match std::mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Head { started } => self.read_head(ctx, started),
                Phase::Rpcd(w) => self.rpcd(ctx, w),
                // Only the worker's verdict moves a login on.
                Phase::Login(w) => Phase::Login(w),
                Phase::Body(b) => self.body(ctx, b),
                Phase::Console(c) => self.console(ctx, c),
                Phase::Reap(r) => self.reap(ctx, r),
                Phase::Exchange(ex) => self.exchange(ctx, ex),
                Phase::Tunnel(t) => self.tunnel(ctx, t),
                Phase::Local(l) => self.write_local(ctx, l),
                Phase::Linger { discarded } => self.linger(ctx, discarded),
                Phase::Closed => Phase::Closed,
            };
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
        self.phase = match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Head { started: true } => {
                ctx.stats.rejected += 1;
                self.reply_error(ctx, 408, "timed out reading the request head", true)
            }
            Phase::Rpcd(mut wait) => {
                wait.stop(ctx);
                self.rpcd_unavailable(ctx, &wait.req, "the router's session service did not answer")
            }
            // Pings, idle limits and the end of an exec run on time.
            phase @ (Phase::Console(_) | Phase::Reap(_)) => phase,
            Phase::Login(wait) => {
                // The failure is still counted when the worker is done.
                let r = Refusal::new(503, "login_busy", "password", "the password check took too long");
                self.refuse(ctx, &wait.req, "-", r)
            }
            _ => Phase::Closed,
        };
        self.drive(ctx);
    }

    /// Ends the connection: whatever its phase owns is dropped (pooled
    /// buffers and pipes go back, helper processes are reaped), and the
    /// socket fds close when the connection drops.
    pub fn close(&mut self, ctx: &mut Ctx) {
        if let Phase::Rpcd(mut w) = std::mem::replace(&mut self.phase, Phase::Closed) {
            w.stop(ctx);
        }
        self.retire_upstream(ctx);
        // The sockets leave epoll's interest list when their fds close.
        self.deadline = None;
    }

    /// Closes the upstream connections, in use or idle (closing their fds
    /// takes them off epoll's interest list).
    fn drop_upstream(&mut self) {
        self.back = None;
        self.idle_back = None;
    }

    /// This client is done with dockerd: an idle upstream connection goes
    /// to the next client, one in use is closed.
    fn retire_upstream(&mut self, ctx: &mut Ctx) {
        if let Some(side) = self.idle_back.take().filter(|_| !ctx.shutting_down) {
            ctx.upstreams.give(ctx.registry, side);
        }
        self.drop_upstream();
    }

    /// Makes `back` ready for a request: this client's idle connection, or
    /// another's, or a new one. Returns whether it is still connecting.
    fn use_upstream(&mut self, ctx: &mut Ctx) -> std::io::Result<bool> {
        if self.back.is_some() {
            return Ok(false);
        }
        let token = Token(self.base_token.0 + 1);
        let reused = self
            .idle_back
            .take()
            .or_else(|| ctx.upstreams.take(ctx.registry, token));
        if let Some(side) = reused {
            self.back = Some(side);
            return Ok(false);
        }
        self.back = Some(connect(ctx.registry, &ctx.cfg.upstream, token)?);
        Ok(true)
    }

    /// Ends the client's connection once its last reply is written. A
    /// client that said it closes and has nothing unread is closed at once:
    /// that sends a FIN, which lets the reply arrive. Otherwise our side is
    /// shut and its input discarded first: closing with input unread sends
    /// a reset, which can destroy the reply.
    fn finish(&mut self, ctx: &mut Ctx, client_closes: bool) -> Phase {
        if client_closes && self.early.is_empty() && !self.front.readable {
            return Phase::Closed;
        }
        self.linger_phase(ctx)
    }

    /// Shuts our sending side and waits a little for the client to close.
    fn linger_phase(&mut self, ctx: &mut Ctx) -> Phase {
        self.front.shutdown_write();
        self.deadline = Some(ctx.now + LINGER);
        Phase::Linger { discarded: 0 }
    }

    /// Waits for the next request on a kept-alive connection.
    fn next_request(&mut self, ctx: &mut Ctx) -> Phase {
        self.deadline = Some(ctx.now + ctx.cfg.idle_timeout);
        Phase::Head { started: false }
    }
}

/// Opens a connection to dockerd, registered under `token`.
fn connect(registry: &Registry, upstream: &UpstreamAddr, token: Token) -> std::io::Result<Side> {
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

//! The event loop: one thread, one `mio::Poll`. It owns the listeners, the
//! connection slab, the deadline heap and the signals, and hands each event
//! to the connection it belongs to.

use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::access::auth::{PeerId, Sessions};
use crate::access::login::Logins;
use crate::access::rpcd::Ubus;
use crate::config::{Command, Config};
use crate::conn::{turn_away, ConnRef, Connection, Ctx};
use crate::deadlines::Deadlines;
use crate::looptime::Work;
use crate::net::idle::IdleUpstreams;
use crate::net::intake::{Decision, Intake};
use crate::net::listener::Listener;
use crate::net::socket::{Side, Stream};
use crate::relay::pool::Resources;
use crate::stats::{Held, Stats};
use crate::sys::signal::{Signal, Signals};

const SIGNAL_TOKEN: Token = Token(0);
const LISTENER_BASE: usize = 1;
/// Connection tokens start here: `CONN_BASE + TOKENS_PER_CONN * slot` for
/// the client, then its upstream socket and a helper process's pipe.
const CONN_BASE: usize = 1 << 16;
const TOKENS_PER_CONN: usize = 3;
/// How long accepting pauses after `accept` failed (out of descriptors or
/// memory): no event says when a descriptor frees up, so a timer retries.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Clients accepted in one go; the rest wait for the next loop iteration,
/// so a flood of connections cannot hold the loop (each may evict another).
const ACCEPT_BATCH: usize = 64;
/// The password hashing worker's wake-ups.
const LOGIN_TOKEN: Token = Token(CONN_BASE - 1);
/// Idle upstream connections are registered just below.
const IDLE_BASE: usize = CONN_BASE - 1 - crate::net::idle::MAX_IDLE;
/// TLS fronts' tokens start above every connection's.
#[cfg(feature = "tls")]
const TLS_BASE: usize = 1 << 20;
/// The TLS handshake worker's wake-ups.
#[cfg(feature = "tls")]
const HANDSHAKE_TOKEN: Token = Token(TLS_BASE - 1);

struct Slot {
    conn: Connection,
    /// Deadline already in the heap for this slot.
    armed: Option<Instant>,
    /// Accept order, which is eviction order.
    serial: u64,
    addr: PeerId,
    /// Counted by `intake` as still sending its first head.
    first_head: bool,
    /// Its place in the count of open connections, given up with the slot.
    _counted: Held,
}

pub struct Server {
    poll: Poll,
    cfg: Config,
    args: Vec<String>,
    listeners: Vec<Option<Listener>>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    timers: Deadlines,
    res: Resources,
    stats: Stats,
    sessions: Sessions,
    logins: Logins,
    upstreams: IdleUpstreams,
    ubus: Ubus,
    signals: Signals,
    /// Set on SIGTERM: when in-flight work is cut off.
    stop_at: Option<Instant>,
    /// At `max_connections` with no connection to evict.
    accept_paused: bool,
    /// Connections with work waiting for the next iteration (policy checks
    /// past this iteration's slice).
    reruns: Vec<usize>,
    /// Policy checks run in the current iteration.
    slow_spent: Duration,
    /// Accepting waits until then: `accept` failed, or a batch was taken.
    accept_resume_at: Option<Instant>,
    /// The last `accept` failed (it is logged once, not at every retry).
    accept_failing: bool,
    /// Kept open so that, out of descriptors, one can be freed to accept
    /// the next client and tell it so instead of leaving it queued.
    spare_fd: Option<File>,
    intake: Intake,
    #[cfg(feature = "tls")]
    fronts: crate::tls::fronts::Fronts,
}

impl Server {
    /// Binds every listener; `args` are kept to re-read the config on SIGHUP.
    pub fn new(cfg: Config, args: Vec<String>) -> io::Result<Server> {
        let poll = Poll::new()?;
        let signals = Signals::new()?;
        poll.registry()
            .register(&mut SourceFd(&signals.raw_fd()), SIGNAL_TOKEN, Interest::READABLE)?;
        let logins = Logins::new(Waker::new(poll.registry(), LOGIN_TOKEN)?)?;
        #[cfg(feature = "tls")]
        let fronts =
            crate::tls::fronts::Fronts::new(TLS_BASE, Waker::new(poll.registry(), HANDSHAKE_TOKEN)?)?;
        let stats = Stats::new(Instant::now());
        let mut server = Server {
            res: Resources::new(cfg.max_head_bytes, cfg.splice, cfg.body_budget),
            sessions: Sessions::default(),
            logins,
            upstreams: IdleUpstreams::new(IDLE_BASE, stats.upstream_idle.clone()),
            stats,
            ubus: Ubus::default(),
            poll,
            args,
            listeners: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            timers: Deadlines::default(),
            signals,
            stop_at: None,
            accept_paused: false,
            reruns: Vec::new(),
            slow_spent: Duration::ZERO,
            accept_resume_at: None,
            accept_failing: false,
            spare_fd: open_spare_fd(),
            intake: Intake::default(),
            #[cfg(feature = "tls")]
            fronts,
            cfg,
        };
        #[cfg(feature = "tls")]
        if server.cfg.listens_with_tls() {
            let config = crate::tls::keys::server_config(&server.cfg.tls).map_err(io::Error::other)?;
            server.fronts.set_config(config);
        }
        for spec in server.cfg.listen.clone() {
            let l = Listener::bind(&spec, server.cfg.unix_mode)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {spec}: {e}")))?;
            server.add_listener(l)?;
        }
        Ok(server)
    }

    fn add_listener(&mut self, mut l: Listener) -> io::Result<()> {
        let index = match self.listeners.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.listeners.push(None);
                self.listeners.len() - 1
            }
        };
        self.poll
            .registry()
            .register(&mut l, Token(LISTENER_BASE + index), Interest::READABLE)?;
        log::info!("listening on {} (upstream {})", l.bound, self.cfg.upstream);
        self.listeners[index] = Some(l);
        Ok(())
    }

    /// The first TCP address really listened on (port 0 resolved).
    pub fn bound_tcp(&self) -> Option<std::net::SocketAddr> {
        self.listeners.iter().flatten().find_map(|l| l.local_tcp())
    }

    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.next_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let woke = Instant::now();
            // Each piece of work ends where the next begins: one clock read each.
            let mut mark = woke;
            self.slow_spent = Duration::ZERO;
            // Work deferred from the last iteration goes first.
            #[cfg(feature = "tls")]
            self.rerun_fronts();
            for index in std::mem::take(&mut self.reruns) {
                self.with_conn(index, |conn, ctx| conn.drive(ctx));
                let now = Instant::now();
                self.stats.loop_time.work(Work::Io, now - mark);
                mark = now;
            }
            for ev in events.iter() {
                let kind = match ev.token() {
                    SIGNAL_TOKEN => {
                        self.on_signals();
                        Work::Signals
                    }
                    LOGIN_TOKEN => {
                        self.on_logins_hashed();
                        Work::Login
                    }
                    #[cfg(feature = "tls")]
                    HANDSHAKE_TOKEN => {
                        self.on_handshakes_done();
                        Work::Io
                    }
                    #[cfg(feature = "tls")]
                    t if self.fronts.owns(t) => {
                        self.on_front_event(t, ev);
                        Work::Io
                    }
                    t if self.upstreams.owns(t) => {
                        self.upstreams.stale(self.poll.registry(), t);
                        Work::Io
                    }
                    Token(t) if t >= CONN_BASE => {
                        let slot = (t - CONN_BASE) / TOKENS_PER_CONN;
                        let which = (t - CONN_BASE) % TOKENS_PER_CONN;
                        self.with_conn(slot, |conn, ctx| {
                            conn.note_event(which, ev);
                            conn.drive(ctx);
                        });
                        Work::Io
                    }
                    Token(t) => {
                        self.accept_all(t - LISTENER_BASE);
                        Work::Accept
                    }
                };
                let now = Instant::now();
                self.stats.loop_time.work(kind, now - mark);
                mark = now;
            }
            self.fire_timers();
            let now = Instant::now();
            self.stats.loop_time.work(Work::Timers, now - mark);
            if self.accept_resume_at.is_some_and(|at| at <= now) {
                self.accept_resume_at = None;
                for i in 0..self.listeners.len() {
                    self.accept_all(i);
                }
                self.stats.loop_time.work(Work::Accept, now.elapsed());
            }
            let now = Instant::now();
            self.stats.loop_time.iteration(now - woke, now);
            if let Some(stop_at) = self.stop_at {
                if self.open_clients() == 0 || Instant::now() >= stop_at {
                    log::info!(
                        "stopped; {} connection(s) cut",
                        self.stats.connections_active.get()
                    );
                    return Ok(());
                }
            }
        }
    }

    /// Connections, and TLS fronts still delivering a closed one's last bytes.
    fn open_clients(&self) -> usize {
        #[cfg(feature = "tls")]
        let fronts = self.fronts.open_count();
        #[cfg(not(feature = "tls"))]
        let fronts = 0;
        self.stats.connections_active.get().max(fronts)
    }

    fn next_timeout(&self) -> Option<Duration> {
        #[cfg(feature = "tls")]
        let fronts_waiting = self.fronts.has_reruns();
        #[cfg(not(feature = "tls"))]
        let fronts_waiting = false;
        if !self.reruns.is_empty() || fronts_waiting {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        let next = self.timers.next();
        #[cfg(feature = "tls")]
        let next = next.into_iter().chain(self.fronts.next_deadline()).min();
        [next, self.stop_at, self.accept_resume_at]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(now))
    }

    /// Runs `f` on a live connection with a fresh context, then files the
    /// connection's new deadline or removes it if it closed.
    fn with_conn(&mut self, index: usize, f: impl FnOnce(&mut Connection, &mut Ctx)) {
        let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let mut ctx = Ctx {
            registry: self.poll.registry(),
            res: &mut self.res,
            cfg: &self.cfg,
            stats: &mut self.stats,
            sessions: &mut self.sessions,
            intake: &self.intake,
            logins: &mut self.logins,
            upstreams: &mut self.upstreams,
            ubus: &mut self.ubus,
            slow_spent: &mut self.slow_spent,
            now: Instant::now(),
            shutting_down: self.stop_at.is_some(),
            #[cfg(feature = "tls")]
            fronts: &self.fronts,
        };
        f(&mut slot.conn, &mut ctx);
        if slot.conn.take_rerun() {
            self.reruns.push(index);
        }
        if slot.conn.is_closed() {
            self.intake.closed(slot.addr, slot.serial);
            self.slots[index] = None;
            self.free.push(index);
            // Pooled pipes and buffers are only ever held by a connection's
            // flows and console, and go back when those drop: with the last
            // connection gone, none may still be out.
            debug_assert!(
                self.stats.connections_active.get() > 0
                    || (self.res.pipes_in_use(), self.res.buffers_in_use()) == (0, 0),
                "pipes or buffers outlived every connection"
            );
            if self.accept_paused && self.stats.connections_active.get() < self.cfg.max_connections {
                self.accept_paused = false;
                for i in 0..self.listeners.len() {
                    self.accept_all(i);
                }
            }
            return;
        }
        if slot.first_head && !slot.conn.awaiting_first_head() {
            slot.first_head = false;
            self.intake.served(slot.addr, slot.serial);
        }
        self.timers.arm(index, &mut slot.armed, slot.conn.deadline);
    }

    fn accept_all(&mut self, index: usize) {
        for _ in 0..ACCEPT_BATCH {
            if self.accept_resume_at.is_some() {
                return;
            }
            let full = self.stats.connections_active.get() >= self.cfg.max_connections;
            if full && !self.intake.can_evict() {
                if !self.accept_paused {
                    log::warn!(
                        "connection limit {} reached and every connection is in use; not accepting",
                        self.cfg.max_connections
                    );
                }
                self.accept_paused = true;
                return;
            }
            let Some(listener) = self.listeners.get(index).and_then(Option::as_ref) else {
                return;
            };
            let tls = listener.spec.is_tls();
            let (stream, peer, peer_id) = match listener.accept() {
                Ok(Some(client)) => client,
                Ok(None) => {
                    self.accept_failing = false;
                    return;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return self.accept_failed(index, &e),
            };
            let addr = peer_id.limit_key();
            let decision = self.intake.decide(
                addr,
                self.stats.connections_active.get(),
                self.cfg.max_connections,
                self.cfg.max_connections_per_address,
            );
            match decision {
                Decision::Admit => {}
                Decision::EvictFirst(victim) => {
                    self.intake.evicted += 1;
                    if let Some(v) = self.slots.get(victim).and_then(Option::as_ref) {
                        log::debug!("{} evicted while sending its first head, for {peer}", v.conn.peer);
                    }
                    self.with_conn(victim, |conn, ctx| conn.evict(ctx));
                }
                Decision::Refuse => {
                    self.intake.refused += 1;
                    log::debug!(
                        "{peer} refused: {} connections from its address are in use",
                        self.intake.open_from(addr)
                    );
                    // A TLS client could not read a plain reply: it is closed.
                    if !tls {
                        let why = "too many connections from this address";
                        turn_away(&mut Side::new(stream), &mut self.res.scratch, why);
                    }
                    continue;
                }
            }
            if tls {
                self.admit_tls(stream, peer, peer_id, addr);
            } else {
                self.admit(stream, peer, peer_id, addr);
            }
        }
        self.accept_resume_at = Some(Instant::now());
    }

    /// Starts a TLS client's front and its connection, which reads and
    /// writes the front's socket pair while being counted, limited and
    /// logged as the TCP client it serves.
    #[cfg(feature = "tls")]
    fn admit_tls(&mut self, stream: Stream, peer: String, peer_id: PeerId, addr: PeerId) {
        let opened = self
            .fronts
            .open(self.poll.registry(), stream, Instant::now(), &self.cfg);
        match opened {
            Ok((front, pair_end)) => {
                if let Some(conn) = self.admit(pair_end, peer, peer_id, addr) {
                    self.fronts.link(front, conn);
                    if let Some(slot) = self.slots[conn.slot].as_mut() {
                        slot.conn.set_over_tls();
                    }
                }
            }
            Err(e) => log::warn!("{peer}: cannot start TLS: {e}"),
        }
    }

    #[cfg(not(feature = "tls"))]
    fn admit_tls(&mut self, _: Stream, peer: String, _: PeerId, _: PeerId) {
        // Config validation refuses tls:// listeners in this build.
        log::warn!("{peer}: this build has no TLS");
    }

    #[cfg(feature = "tls")]
    fn on_front_event(&mut self, token: Token, ev: &mio::event::Event) {
        let slots = &mut self.slots;
        self.fronts.on_event(token, ev, Instant::now(), |conn, names| {
            hand_over(slots, conn, names)
        });
    }

    #[cfg(feature = "tls")]
    fn rerun_fronts(&mut self) {
        let slots = &mut self.slots;
        self.fronts
            .rerun(Instant::now(), |conn, names| hand_over(slots, conn, names));
    }

    #[cfg(feature = "tls")]
    fn on_handshakes_done(&mut self) {
        let slots = &mut self.slots;
        self.fronts
            .on_handshakes_done(Instant::now(), |conn, names| hand_over(slots, conn, names));
    }

    fn admit(&mut self, stream: Stream, peer: String, peer_id: PeerId, addr: PeerId) -> Option<ConnRef> {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let front_token = Token(CONN_BASE + TOKENS_PER_CONN * slot);
        let mut side = Side::new(stream);
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut side.stream, front_token, interest)
        {
            log::warn!("register client socket: {e}");
            self.free.push(slot);
            return None;
        }
        let conn = Connection::new(side, front_token, peer, peer_id, Instant::now(), &self.cfg);
        self.stats.connections_total += 1;
        let serial = self.stats.connections_total;
        self.intake.opened(addr, serial, slot);
        self.slots[slot] = Some(Slot {
            conn,
            armed: None,
            serial,
            addr,
            first_head: true,
            _counted: self.stats.connections_active.hold(),
        });
        self.with_conn(slot, |_, _| {});
        Some(ConnRef { slot, serial })
    }

    /// `accept` failed for want of descriptors, memory or buffers: pause and
    /// retry on a timer. Out of descriptors, the spare one is given up for a
    /// moment so the client at the head of the queue hears why; the rest
    /// wait in the queue for the retry, since descriptors usually come back
    /// within milliseconds (every finished request frees two or three).
    fn accept_failed(&mut self, index: usize, e: &io::Error) {
        if !self.accept_failing {
            log::warn!(
                "accept: {e}; retrying every {} ms",
                ACCEPT_RETRY.as_millis() as u64
            );
        }
        self.accept_failing = true;
        if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
            self.stats.descriptors_exhausted += 1;
            if let Some(spare) = self.spare_fd.take() {
                drop(spare);
                let listener = self.listeners.get(index).and_then(Option::as_ref);
                if let Some(Ok(Some((stream, peer, _)))) = listener.map(Listener::accept) {
                    self.stats.refused_no_descriptor += 1;
                    log::warn!("{peer} refused: out of file descriptors");
                    let why = "the gateway is out of file descriptors; try again";
                    turn_away(&mut Side::new(stream), &mut self.res.scratch, why);
                }
                self.spare_fd = open_spare_fd();
            }
        }
        self.accept_resume_at = Some(Instant::now() + ACCEPT_RETRY);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        #[cfg(feature = "tls")]
        self.fronts.fire_timers(now);
        while let Some((index, at)) = self.timers.pop_due(now) {
            let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
                continue;
            };
            if !Deadlines::fired(&mut slot.armed, at) {
                continue;
            }
            match slot.conn.deadline {
                Some(deadline) if deadline <= now => self.with_conn(index, |conn, ctx| conn.on_timeout(ctx)),
                // Moved later since it was armed: arm the new one.
                Some(_) => self.with_conn(index, |_, _| {}),
                None => {}
            }
        }
    }

    /// Hands each verdict of the hashing worker to the connection waiting
    /// for it, if it still is.
    fn on_logins_hashed(&mut self) {
        for verdict in self.logins.finished(Instant::now()) {
            let slot = (verdict.token.0 - CONN_BASE) / TOKENS_PER_CONN;
            self.with_conn(slot, |conn, ctx| conn.login_hashed(ctx, verdict));
        }
    }

    fn on_signals(&mut self) {
        while let Some(sig) = self.signals.next() {
            match sig {
                Signal::Terminate => self.begin_shutdown(),
                Signal::Reload => self.reload(),
            }
        }
    }

    fn begin_shutdown(&mut self) {
        if self.stop_at.is_some() {
            return;
        }
        log::info!(
            "stopping: {} connection(s) get up to {}s to finish",
            self.stats.connections_active.get(),
            self.cfg.shutdown_grace.as_secs()
        );
        self.stop_at = Some(Instant::now() + self.cfg.shutdown_grace);
        for l in self.listeners.iter_mut().filter_map(Option::take) {
            drop(l);
        }
        for index in 0..self.slots.len() {
            let idle = self.slots[index].as_ref().is_some_and(|s| s.conn.is_idle());
            if idle {
                self.with_conn(index, |conn, ctx| conn.drive(ctx));
            }
        }
    }

    /// Re-reads flags and file; open connections and streams carry on.
    fn reload(&mut self) {
        let cfg = match Config::from_args(&self.args) {
            Ok(Command::Run(cfg)) => *cfg,
            Ok(_) => return,
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                return;
            }
        };
        #[cfg(feature = "tls")]
        if cfg.listens_with_tls() {
            match crate::tls::keys::server_config(&cfg.tls) {
                Ok(config) => self.fronts.set_config(config),
                Err(e) => log::error!("reload: keeping the running TLS certificates: {e}"),
            }
        }
        log::set_max_level(cfg.log_level);
        self.res.splice_enabled = cfg.splice;
        self.res.resize_scratch(cfg.max_head_bytes);
        self.res.body_budget.limit = cfg.body_budget;
        for slot in self.listeners.iter_mut() {
            if slot.as_ref().is_some_and(|l| !cfg.listen.contains(&l.spec)) {
                if let Some(mut l) = slot.take() {
                    let _ = self.poll.registry().deregister(&mut l);
                    log::info!("no longer listening on {}", l.bound);
                }
            }
        }
        if cfg.upstream != self.cfg.upstream {
            self.upstreams.clear(self.poll.registry());
        }
        // A session keeps the principal and role it was made with: when
        // the credentials or roles change (a token or user revoked, a role
        // narrowed), everyone signs in again.
        if cfg.auth != self.cfg.auth && self.sessions.count() > 0 {
            self.sessions.clear();
            log::info!("authentication changed: sessions and tickets ended");
        }
        self.cfg = cfg;
        for spec in self.cfg.listen.clone() {
            let present = self.listeners.iter().flatten().any(|l| l.spec == spec);
            if !present {
                match Listener::bind(&spec, self.cfg.unix_mode) {
                    Ok(l) => {
                        if let Err(e) = self.add_listener(l) {
                            log::error!("cannot listen on {spec}: {e}");
                        }
                    }
                    Err(e) => log::error!("cannot listen on {spec}: {e}"),
                }
            }
        }
        log::info!("configuration reloaded");
    }
}

/// Gives a connection the names its TLS client's certificate proved, if it
/// is still the connection the front was started for.
#[cfg(feature = "tls")]
fn hand_over(slots: &mut [Option<Slot>], conn: ConnRef, names: crate::tls::cert_names::CertNames) {
    if let Some(slot) = slots.get_mut(conn.slot).and_then(Option::as_mut) {
        if slot.serial == conn.serial {
            slot.conn.set_client_cert(names);
        }
    }
}

/// The spare descriptor; without one (no `/dev/null`, or none free) the
/// out-of-descriptors reply is skipped and clients wait for the retry.
fn open_spare_fd() -> Option<File> {
    File::open("/dev/null")
        .map_err(|e| log::warn!("no spare descriptor (/dev/null): {e}"))
        .ok()
}

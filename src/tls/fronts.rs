//! Every TLS client's front, as the loop holds them: their tokens, the
//! connection each feeds, the deadlines of handshakes and of departed
//! connections' last bytes, and the cap on handshakes under way.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::{Interest, Registry, Token, Waker};
use rustls::{ServerConfig, ServerConnection};

use crate::config::Config;
use crate::conn::ConnRef;
use crate::deadlines::Deadlines;
use crate::net::socket::{Side, Stream};
use crate::stats::TlsFigures;
use crate::tls::cert_names::CertNames;
use crate::tls::front::{Front, Step};
use crate::tls::handshaker::Handshaker;

/// Bytes of the connection's replies sealed into records at a time: two
/// full records, so a bulk download writes 32 KiB per send, as the plain
/// relay does.
const SCRATCH: usize = 32 * 1024;

struct Entry {
    front: Front,
    serial: u64,
    conn: Option<ConnRef>,
    /// Deadline already in the heap for this entry.
    armed: Option<Instant>,
    /// Cancels its handshake job while the worker holds it.
    cancel: Option<Arc<AtomicBool>>,
    /// Its handshake state while it waits for room in the worker.
    for_worker: Option<Box<ServerConnection>>,
}

pub struct Fronts {
    config: Option<Arc<ServerConfig>>,
    /// Tokens from here: `base + 2 * slot` the client, `+ 1` the pair.
    base: usize,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// Serial → slot of the fronts still in their handshake, oldest first.
    handshaking: BTreeMap<u64, usize>,
    /// Serial → slot of the handshakes waiting for room in the worker,
    /// oldest first; all of them are in `handshaking` too, so as bounded.
    waiting_for_worker: BTreeMap<u64, usize>,
    /// Serial → slot of the fronts whose connection closed, delivering its
    /// last bytes, oldest first. No connection counts them any more, so
    /// they have a cap of their own: `max_connections`.
    lingering: BTreeMap<u64, usize>,
    max_lingering: usize,
    /// How long a departed connection's last bytes wait for a client that
    /// takes none (`tls.handshake_timeout_secs`).
    linger: Duration,
    timers: Deadlines,
    serial: u64,
    scratch: Box<[u8]>,
    handshaker: Handshaker,
    /// Fronts (slot and serial) whose turn ended with records waiting.
    reruns: Vec<(usize, u64)>,
    /// `tls.max_handshakes`, which also bounds the jobs the worker holds.
    max_handshakes: usize,
    evicted: u64,
    timed_out: u64,
    failed: u64,
}

impl Fronts {
    /// Fronts with tokens from `base`, and a handshake worker that wakes
    /// `waker` with its results.
    pub fn new(base: usize, waker: Waker) -> io::Result<Fronts> {
        Ok(Fronts {
            config: None,
            base,
            slots: Vec::new(),
            free: Vec::new(),
            handshaking: BTreeMap::new(),
            waiting_for_worker: BTreeMap::new(),
            lingering: BTreeMap::new(),
            max_lingering: 1,
            linger: Duration::ZERO,
            timers: Deadlines::default(),
            serial: 0,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            handshaker: Handshaker::new(waker)?,
            reruns: Vec::new(),
            max_handshakes: 1,
            evicted: 0,
            timed_out: 0,
            failed: 0,
        })
    }

    /// The configuration new clients get; those already connected keep theirs.
    pub fn set_config(&mut self, config: Arc<ServerConfig>) {
        self.config = Some(config);
    }

    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.base
    }

    pub fn open_count(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn figures(&self) -> TlsFigures {
        TlsFigures {
            fronts: self.open_count(),
            handshaking: self.handshaking.len(),
            evicted: self.evicted,
            timed_out: self.timed_out,
            failed: self.failed,
        }
    }

    /// Starts the front of a client just accepted and returns the end of
    /// the socket pair its connection reads and writes. Beyond
    /// `max_handshakes`, the oldest handshake under way makes room: slow
    /// handshakes are always the oldest, so they cannot hold the cap.
    pub fn open(
        &mut self,
        registry: &Registry,
        tcp: Stream,
        now: Instant,
        cfg: &Config,
    ) -> io::Result<(usize, Stream)> {
        let (handshake_timeout, max_handshakes) = (cfg.tls.handshake_timeout, cfg.tls.max_handshakes);
        self.max_lingering = cfg.max_connections;
        self.linger = handshake_timeout;
        let config = self
            .config
            .clone()
            .ok_or_else(|| io::Error::other("no TLS configuration"))?;
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        self.max_handshakes = max_handshakes;
        while self.handshaking.len() >= max_handshakes {
            let Some((_, oldest)) = self.handshaking.pop_first() else {
                break;
            };
            self.evicted += 1;
            self.close(oldest);
        }
        let (ours, theirs) = UnixStream::pair()?;
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut front = Front::new(
            Side::new(tcp),
            Side::new(Stream::Unix(ours)),
            tls,
            now + handshake_timeout,
        );
        let interest = Interest::READABLE | Interest::WRITABLE;
        let registered = registry
            .register(&mut front.tcp.stream, Token(self.base + 2 * index), interest)
            .and_then(|()| {
                registry.register(
                    &mut front.inner.stream,
                    Token(self.base + 2 * index + 1),
                    interest,
                )
            });
        if let Err(e) = registered {
            self.free.push(index);
            return Err(e);
        }
        self.serial += 1;
        self.handshaking.insert(self.serial, index);
        self.slots[index] = Some(Entry {
            front,
            serial: self.serial,
            conn: None,
            armed: None,
            cancel: None,
            for_worker: None,
        });
        self.arm(index);
        Ok((index, Stream::Unix(theirs)))
    }

    /// Records which connection the front at `index` feeds.
    pub fn link(&mut self, index: usize, conn: ConnRef) {
        if let Some(entry) = self.slots.get_mut(index).and_then(Option::as_mut) {
            entry.conn = Some(conn);
        }
    }

    /// Handles readiness on one of a front's sockets. `hand_over` gives a
    /// connection its client's certificate as the handshake ends.
    pub fn on_event(
        &mut self,
        token: Token,
        ev: &mio::event::Event,
        now: Instant,
        hand_over: impl FnMut(ConnRef, CertNames),
    ) {
        let (index, is_pair) = ((token.0 - self.base) / 2, (token.0 - self.base) % 2 == 1);
        let Some(entry) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let front = &mut entry.front;
        let side = if is_pair {
            // The connection closed its end (not only shut it for writing).
            if ev.is_write_closed() || ev.is_error() {
                front.conn_gone = true;
            }
            &mut front.inner
        } else {
            &mut front.tcp
        };
        side.note(ev);
        self.drive(index, now, hand_over);
    }

    fn drive(&mut self, index: usize, now: Instant, mut hand_over: impl FnMut(ConnRef, CertNames)) {
        loop {
            let Some(entry) = self.slots.get_mut(index).and_then(Option::as_mut) else {
                return;
            };
            match entry.front.drive(&mut self.scratch) {
                step @ (Step::Wait | Step::Again) => {
                    if let Step::Again = step {
                        self.reruns.push((index, entry.serial));
                    }
                    // A connection that left gets `self.linger` for its last
                    // bytes to reach the client, renewed while the client
                    // takes some (`fire_timers`): slow is fine, stopped is not.
                    let starts_lingering = entry.front.conn_gone && entry.front.deadline.is_none();
                    if starts_lingering {
                        entry.front.client_took_bytes();
                        entry.front.deadline = Some(now + self.linger);
                        self.lingering.insert(entry.serial, index);
                    }
                    self.arm(index);
                    if starts_lingering && self.lingering.len() > self.max_lingering {
                        if let Some((_, oldest)) = self.lingering.pop_first() {
                            self.close(oldest);
                        }
                    }
                    return;
                }
                Step::Process(tls) => {
                    // The worker is full (fronts evicted meanwhile still have
                    // jobs there): this one waits its turn rather than being
                    // refused for another's ClientHello.
                    if !self.handshaker.has_room(self.max_handshakes) {
                        entry.for_worker = Some(tls);
                        self.waiting_for_worker.insert(entry.serial, index);
                        return;
                    }
                    let Some(cancel) = self.handshaker.submit(index, entry.serial, tls) else {
                        return self.close(index);
                    };
                    entry.cancel = Some(cancel);
                    return;
                }
                Step::Established(names) => {
                    self.handshaking.remove(&entry.serial);
                    if let (Some(conn), Some(names)) = (entry.conn, names) {
                        hand_over(conn, names);
                    }
                }
                Step::Close => return self.close(index),
            }
        }
    }

    /// Takes back the handshakes the worker processed, gives the room to
    /// those waiting for it, and drives the processed fronts on.
    pub fn on_handshakes_done(&mut self, now: Instant, mut hand_over: impl FnMut(ConnRef, CertNames)) {
        let finished = self.handshaker.finished();
        self.feed_worker();
        for job in finished {
            let Some(entry) = self.slots.get_mut(job.slot).and_then(Option::as_mut) else {
                continue;
            };
            // The front it came from was closed meanwhile.
            if entry.serial != job.serial {
                continue;
            }
            entry.cancel = None;
            let refused = job.processed.is_err();
            match entry.front.resume(job.tls, job.processed) {
                Step::Close => {
                    self.failed += u64::from(refused);
                    self.close(job.slot);
                }
                _ => self.drive(job.slot, now, &mut hand_over),
            }
        }
    }

    /// Hands the worker the oldest waiting handshakes it has room for.
    fn feed_worker(&mut self) {
        while self.handshaker.has_room(self.max_handshakes) {
            let Some((serial, index)) = self.waiting_for_worker.pop_first() else {
                return;
            };
            let waiting = self.slots.get_mut(index).and_then(Option::as_mut);
            let Some(entry) = waiting.filter(|e| e.serial == serial) else {
                continue;
            };
            let Some(tls) = entry.for_worker.take() else {
                continue;
            };
            match self.handshaker.submit(index, serial, tls) {
                Some(cancel) => entry.cancel = Some(cancel),
                None => self.close(index),
            }
        }
    }

    /// Whether some front must be driven again in the next iteration.
    pub fn has_reruns(&self) -> bool {
        !self.reruns.is_empty()
    }

    /// Drives again the fronts whose last turn ended with records waiting.
    pub fn rerun(&mut self, now: Instant, mut hand_over: impl FnMut(ConnRef, CertNames)) {
        for (index, serial) in std::mem::take(&mut self.reruns) {
            let live = self
                .slots
                .get(index)
                .and_then(Option::as_ref)
                .is_some_and(|e| e.serial == serial);
            if live {
                self.drive(index, now, &mut hand_over);
            }
        }
    }

    /// The earliest deadline of any front.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Cuts the fronts whose deadline passed: handshakes that took too
    /// long, and clients that would not take a departed connection's bytes.
    pub fn fire_timers(&mut self, now: Instant) {
        while let Some((index, at)) = self.timers.pop_due(now) {
            let Some(entry) = self.slots.get_mut(index).and_then(Option::as_mut) else {
                continue;
            };
            if !Deadlines::fired(&mut entry.armed, at) {
                continue;
            }
            match entry.front.deadline {
                Some(deadline) if deadline <= now => {
                    if entry.front.is_handshaking() {
                        self.timed_out += 1;
                    } else if entry.front.client_took_bytes() {
                        entry.front.deadline = Some(now + self.linger);
                        self.arm(index);
                        continue;
                    }
                    self.close(index);
                }
                Some(_) => self.arm(index),
                None => {}
            }
        }
    }

    fn arm(&mut self, index: usize) {
        let Some(entry) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        self.timers.arm(index, &mut entry.armed, entry.front.deadline);
    }

    /// Drops a front: its sockets close, and its connection sees the pair
    /// close as a client that went away.
    fn close(&mut self, index: usize) {
        if let Some(entry) = self.slots.get_mut(index).and_then(Option::take) {
            if let Some(cancel) = entry.cancel {
                cancel.store(true, Ordering::Relaxed);
            }
            self.handshaking.remove(&entry.serial);
            self.waiting_for_worker.remove(&entry.serial);
            self.lingering.remove(&entry.serial);
            self.free.push(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::os::unix::net::UnixStream as ClientSocket;
    use std::time::Duration;

    use mio::{Events, Poll};
    use rustls::ClientConnection;

    use super::*;
    use crate::tls::test_pki::{client, server_config};

    const WORKER_DONE: Token = Token(1);

    /// Fronts on a real poll, whose worker results are taken back only
    /// when a test says so.
    struct Rig {
        poll: Poll,
        fronts: Fronts,
        cfg: Config,
        /// The connections' ends of the pairs: a front whose connection
        /// closed would end for that reason instead.
        conns: Vec<Stream>,
    }

    impl Rig {
        fn new(max_handshakes: usize) -> Rig {
            let poll = Poll::new().unwrap();
            let waker = Waker::new(poll.registry(), WORKER_DONE).unwrap();
            let mut fronts = Fronts::new(10, waker).unwrap();
            fronts.set_config(server_config());
            let mut cfg = Config::default();
            cfg.tls.max_handshakes = max_handshakes;
            Rig {
                poll,
                fronts,
                cfg,
                conns: Vec::new(),
            }
        }

        /// A new client, with its ClientHello sent.
        fn connect(&mut self) -> (ClientSocket, ClientConnection) {
            let (ours, theirs) = mio::net::UnixStream::pair().unwrap();
            let (_, conn) = self
                .fronts
                .open(
                    self.poll.registry(),
                    Stream::Unix(theirs),
                    Instant::now(),
                    &self.cfg,
                )
                .unwrap();
            self.conns.push(conn);
            let mut socket = ClientSocket::from(std::os::fd::OwnedFd::from(ours));
            socket.set_nonblocking(true).unwrap();
            let mut tls = client(false);
            tls.write_tls(&mut socket).unwrap();
            (socket, tls)
        }

        /// Handles one poll's events: the fronts' readiness always, the
        /// worker's results only if `take_results`.
        fn turn(&mut self, take_results: bool) {
            let mut events = Events::with_capacity(16);
            self.poll
                .poll(&mut events, Some(Duration::from_secs(10)))
                .unwrap();
            assert!(!events.is_empty(), "nothing happened in 10 s");
            let now = Instant::now();
            for ev in &events {
                if ev.token() != WORKER_DONE {
                    self.fronts.on_event(ev.token(), ev, now, |_, _| {});
                } else if take_results {
                    self.fronts.on_handshakes_done(now, |_, _| {});
                }
            }
        }
    }

    fn is_closed(socket: &mut ClientSocket) -> bool {
        let mut byte = [0];
        match io::Read::read(socket, &mut byte) {
            Ok(0) => true,
            Ok(_) => panic!("bytes for a client that sent only a ClientHello"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_client_hello_meeting_a_full_worker_waits_for_room_instead_of_being_refused() {
        let mut rig = Rig::new(1);
        let (mut evicted, _) = rig.connect();
        while rig.fronts.handshaker.has_room(1) {
            rig.turn(false);
        }
        // The second client evicts the first, whose job the worker still
        // holds: the worker is full when the second ClientHello arrives.
        let (mut socket, mut tls) = rig.connect();
        assert!(is_closed(&mut evicted), "the oldest handshake was not evicted");
        while rig.fronts.waiting_for_worker.is_empty() && rig.fronts.open_count() == 1 {
            rig.turn(false);
        }
        assert_eq!(rig.fronts.open_count(), 1, "the second client was refused");
        assert!(!is_closed(&mut socket));

        // Once the worker's results are taken back, the handshake completes.
        while tls.is_handshaking() || rig.fronts.figures().handshaking > 0 {
            rig.turn(true);
            while tls.wants_write() {
                tls.write_tls(&mut socket).unwrap();
            }
            match tls.read_tls(&mut socket) {
                Ok(0) => panic!("the front closed mid-handshake"),
                Ok(_) => drop(tls.process_new_packets().unwrap()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(rig.fronts.figures().evicted, 1);
    }
}

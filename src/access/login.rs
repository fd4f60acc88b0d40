//! Logins without stalling the event loop: passwords are hashed on one
//! worker thread fed by a bounded queue, which reports back through a
//! `mio::Waker`; the limits on failed logins (per peer and for everyone)
//! decide who may queue at all.
//!
//! Both limits are leaky buckets kept as the instant their debt is paid off
//! (GCRA): a failure adds `window / allowed` to it, and a login may start
//! while one more failure would not put the debt beyond the window. That is
//! one `Instant` per peer, and it forgets on its own.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mio::{Token, Waker};

use crate::access::auth::{PasswordHash, PeerId};
use crate::sys;

/// Failed logins one peer (IPv6: one /64) may make per window before 429.
pub const PEER_FAILURES: u32 = 5;
/// Failed logins everyone together may make per window: past this every
/// login gets 429, so that addresses (free with IPv6) buy no extra guesses.
pub const GLOBAL_FAILURES: u32 = 60;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Peers with failures remembered at once. When full, the entry whose debt
/// is paid off soonest goes: the oldest failure, and never a peer that is
/// still blocked while lighter entries remain.
/// The global limit keeps the table far smaller in practice: an entry
/// needs a failure, and at most `GLOBAL_FAILURES` happen per window.
pub const MAX_PEERS: usize = 1024;
/// Logins queued for or being hashed; beyond this a login gets 503.
pub const MAX_QUEUED: usize = 16;

/// Why a login may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many failed logins from this peer, or from everyone (429).
    RateLimited,
    /// The hashing queue is full (503).
    Busy,
}

/// A login that was hashed; `token` is the client connection's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub token: Token,
    pub job: u64,
    pub matched: bool,
}

struct Job {
    id: u64,
    token: Token,
    peer: PeerId,
    password: String,
    against: PasswordHash,
    /// False for an unknown user: hashed all the same, never matches.
    known: bool,
}

struct Done {
    verdict: Verdict,
    peer: PeerId,
    rounds: u64,
}

/// The failure limits: per peer and for everyone.
#[derive(Default)]
pub struct Limiter {
    /// When each peer's failure debt is paid off.
    peers: HashMap<PeerId, Instant>,
    /// When everyone's failure debt is paid off.
    global: Option<Instant>,
    /// Logins being hashed: each may still become a failure, so each
    /// holds a share of the global allowance until it is decided.
    pending: u32,
}

/// Whether a debt paid off at `until` leaves room for `more` failures of
/// `cost` each within the window.
fn room(until: Option<Instant>, now: Instant, cost: Duration, more: u32) -> bool {
    let owed = until.map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
    owed + cost * more <= WINDOW
}

fn charge(until: Option<Instant>, now: Instant, cost: Duration) -> Instant {
    until.map_or(now, |u| u.max(now)) + cost
}

impl Limiter {
    const PEER_COST: Duration = Duration::from_secs(WINDOW.as_secs() / PEER_FAILURES as u64);
    const GLOBAL_COST: Duration = Duration::from_secs(WINDOW.as_secs() / GLOBAL_FAILURES as u64);

    /// Whether `peer` may try a login now.
    pub fn allows(&self, peer: PeerId, now: Instant) -> bool {
        let peer = peer.limit_key();
        room(self.peers.get(&peer).copied(), now, Self::PEER_COST, 1)
            && room(self.global, now, Self::GLOBAL_COST, self.pending + 1)
    }

    /// A login starts: it counts against its peer at once (so parallel
    /// attempts cannot overtake the count) and holds a global share.
    fn begin(&mut self, peer: PeerId, now: Instant) {
        self.fail_peer(peer.limit_key(), now);
        self.pending += 1;
    }

    /// A login was decided: a success clears its peer's failures, a
    /// failure is charged to everyone.
    fn end(&mut self, peer: PeerId, matched: bool, now: Instant) {
        self.pending = self.pending.saturating_sub(1);
        self.settle(peer, matched, now);
    }

    /// A login checked elsewhere (a router login, by rpcd) has started:
    /// like one being hashed, it counts against its peer at once, so that
    /// parallel attempts cannot overtake the count. It holds no global
    /// share: at most `rpcd::MAX_CHILDREN` are in flight at once.
    pub fn begin_elsewhere(&mut self, peer: PeerId, now: Instant) {
        self.fail_peer(peer.limit_key(), now);
    }

    /// A login that `begin_elsewhere` started was decided.
    pub fn settle(&mut self, peer: PeerId, matched: bool, now: Instant) {
        if matched {
            let peer = peer.limit_key();
            self.peers.remove(&peer);
        } else {
            self.global = Some(charge(self.global, now, Self::GLOBAL_COST));
        }
    }

    /// A failure decided at once (a malformed body): counted exactly like
    /// a wrong password.
    pub fn fail_now(&mut self, peer: PeerId, now: Instant) {
        self.begin(peer, now);
        self.end(peer, false, now);
    }

    fn fail_peer(&mut self, peer: PeerId, now: Instant) {
        let old = self.peers.remove(&peer);
        // Paid-off entries go; then, while the table is full, the lightest
        // (the soonest paid off, the lowest peer among equals). Scans of
        // at most MAX_PEERS entries: a login starts only when there is
        // room in the hashing queue or the global limit, so this runs
        // tens of times a second at most, and an ordered index of the
        // entries was 5 KB of a MIPS binary.
        self.peers.retain(|_, until| *until > now);
        while self.peers.len() >= MAX_PEERS {
            let lightest = self.peers.iter().map(|(peer, until)| (*until, *peer)).min();
            let Some((_, lightest)) = lightest else { break };
            self.peers.remove(&lightest);
        }
        let until = charge(old, now, Self::PEER_COST);
        self.peers.insert(peer, until);
    }

    /// Peers with failures remembered.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

/// What the loop and the worker pass each other, under one lock that
/// neither holds for long (never while hashing). A mutex and a condvar
/// instead of two std channels: those are 10 KB of a MIPS binary.
#[derive(Default)]
struct Queues {
    /// Jobs for the worker; never more than `MAX_QUEUED`, which `Logins`
    /// counts.
    jobs: VecDeque<Job>,
    /// Verdicts for the loop.
    done: Vec<Done>,
    /// `Logins` was dropped: the worker ends.
    closed: bool,
    /// The worker ended (it could no longer wake the loop): logins fail
    /// closed (503).
    worker_gone: bool,
}

#[derive(Default)]
struct Shared {
    queues: Mutex<Queues>,
    /// Signalled when a job comes or `Logins` goes.
    wake_worker: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        // Nothing panics while holding it; a poisoned lock's data is whole.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The worker's loop: each job hashed and reported, until `Logins`
    /// is dropped or the loop can no longer be woken.
    fn work(&self, waker: &Waker) {
        loop {
            let job = {
                let mut q = self.lock();
                loop {
                    if q.closed {
                        return;
                    }
                    if let Some(job) = q.jobs.pop_front() {
                        break job;
                    }
                    q = self.wake_worker.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let hash = job.against.verify(&job.password);
            let done = Done {
                verdict: Verdict {
                    token: job.token,
                    job: job.id,
                    matched: hash && job.known,
                },
                peer: job.peer,
                rounds: u64::from(job.against.iterations),
            };
            self.lock().done.push(done);
            if waker.wake().is_err() {
                return;
            }
        }
    }
}

/// The login limits and the hashing worker, owned by the event loop.
pub struct Logins {
    pub limiter: Limiter,
    shared: Arc<Shared>,
    next_job: u64,
    /// Jobs sent and not yet reported back.
    queued: usize,
    /// Logins hashed, and the PBKDF2 rounds they took, since start.
    pub hashed: u64,
    pub rounds: u64,
}

impl Logins {
    /// Starts the worker; it wakes `waker` whenever a verdict is ready and
    /// ends when `Logins` is dropped.
    pub fn new(waker: Waker) -> io::Result<Logins> {
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        sys::thread::spawn(Some(c"dockermand-hash"), move || {
            worker.work(&waker);
            // The loop can no longer hear us (or is gone): logins fail
            // closed from now on.
            worker.lock().worker_gone = true;
        })?;
        Ok(Logins {
            limiter: Limiter::default(),
            shared,
            next_job: 0,
            queued: 0,
            hashed: 0,
            rounds: 0,
        })
    }

    /// Whether `peer` may start a login now, and whether there is room.
    pub fn check(&self, peer: PeerId, now: Instant) -> Result<(), Refused> {
        if !self.limiter.allows(peer, now) {
            return Err(Refused::RateLimited);
        }
        if self.queued >= MAX_QUEUED {
            return Err(Refused::Busy);
        }
        Ok(())
    }

    /// Queues `password` to be checked against `against`, after `check`
    /// passed; the verdict for connection `token` comes back from
    /// `finished` with the returned job id.
    pub fn submit(
        &mut self,
        token: Token,
        peer: PeerId,
        password: String,
        against: PasswordHash,
        known: bool,
        now: Instant,
    ) -> Result<u64, Refused> {
        self.check(peer, now)?;
        let id = self.next_job;
        let job = Job {
            id,
            token,
            peer,
            password,
            against,
            known,
        };
        {
            // The queue holds at most `queued`, below `MAX_QUEUED` here; a
            // worker that is gone fails closed.
            let mut q = self.shared.lock();
            if q.worker_gone {
                return Err(Refused::Busy);
            }
            q.jobs.push_back(job);
        }
        self.shared.wake_worker.notify_one();
        self.next_job += 1;
        self.queued += 1;
        self.limiter.begin(peer, now);
        Ok(id)
    }

    /// Verdicts ready since the last call, with the limits settled.
    pub fn finished(&mut self, now: Instant) -> Vec<Verdict> {
        let mut out = Vec::new();
        let done = std::mem::take(&mut self.shared.lock().done);
        for done in done {
            self.queued -= 1;
            self.hashed += 1;
            self.rounds += done.rounds;
            self.limiter.end(done.peer, done.verdict.matched, now);
            out.push(done.verdict);
        }
        out
    }

    /// Logins queued or being hashed.
    pub fn queued(&self) -> usize {
        self.queued
    }
}

impl Drop for Logins {
    /// Ends the worker once it is done with the job in hand, if any.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake_worker.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    fn ip(s: &str) -> PeerId {
        PeerId::Ip(s.parse().unwrap())
    }

    /// A login that fails after being hashed.
    fn fail(l: &mut Limiter, peer: PeerId, now: Instant) {
        assert!(l.allows(peer, now), "{peer} refused");
        l.begin(peer, now);
        l.end(peer, false, now);
    }

    #[test]
    fn logins_checked_elsewhere_count_from_their_start() {
        let now = Instant::now();
        let mut l = Limiter::default();
        let a = ip("192.0.2.1");
        // Sent side by side, each is counted before the next is looked at.
        let mut started = 0;
        while l.allows(a, now) {
            l.begin_elsewhere(a, now);
            started += 1;
        }
        assert_eq!(started, PEER_FAILURES);
        for _ in 0..started - 1 {
            l.settle(a, false, now);
        }
        // The last one had the right password: its peer starts afresh.
        l.settle(a, true, now);
        assert!(l.allows(a, now));
    }

    #[test]
    fn a_peer_gets_five_failures_a_minute() {
        let now = Instant::now();
        let mut l = Limiter::default();
        let a = ip("192.0.2.1");
        for _ in 0..PEER_FAILURES {
            fail(&mut l, a, now);
        }
        assert!(!l.allows(a, now));
        // One more every twelve seconds; all of them after a minute.
        assert!(!l.allows(a, now + Duration::from_secs(11)));
        assert!(l.allows(a, now + Duration::from_secs(12)));
        assert!(l.allows(a, now + WINDOW));
        // Others, local users included, have allowances of their own.
        assert!(l.allows(ip("192.0.2.2"), now));
        fail(&mut l, PeerId::Uid(0), now);
        assert!(l.allows(PeerId::Uid(1000), now));
    }

    #[test]
    fn an_ipv6_64_is_one_peer() {
        let now = Instant::now();
        let mut l = Limiter::default();
        for i in 0..PEER_FAILURES {
            fail(&mut l, ip(&format!("2001:db8::{:x}", i + 1)), now);
        }
        assert!(!l.allows(ip("2001:db8::ffff:1"), now));
        assert!(l.allows(ip("2001:db8:0:1::1"), now));
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn a_success_clears_its_peer_and_costs_nobody() {
        let now = Instant::now();
        let mut l = Limiter::default();
        let a = ip("192.0.2.1");
        for _ in 0..PEER_FAILURES - 1 {
            fail(&mut l, a, now);
        }
        l.begin(a, now);
        l.end(a, true, now);
        assert!(l.is_empty());
        // Only the four failures count against everyone.
        for i in 0..GLOBAL_FAILURES - (PEER_FAILURES - 1) {
            fail(&mut l, ip(&format!("10.0.{}.{}", i / 200, i % 200)), now);
        }
        assert!(!l.allows(ip("198.51.100.1"), now));
    }

    #[test]
    fn address_churn_meets_the_global_limit() {
        let now = Instant::now();
        let mut l = Limiter::default();
        for i in 0..GLOBAL_FAILURES {
            fail(&mut l, ip(&format!("10.1.{}.{}", i / 200, i % 200)), now);
        }
        // A fresh address, a fresh /64, a local user: everyone waits.
        for peer in [ip("198.51.100.1"), ip("2001:db8:9::1"), PeerId::Uid(0)] {
            assert!(!l.allows(peer, now), "{peer}");
        }
        assert!(l.allows(ip("198.51.100.1"), now + Duration::from_secs(1)));
    }

    #[test]
    fn logins_being_hashed_hold_their_share() {
        let now = Instant::now();
        let mut l = Limiter::default();
        for i in 0..GLOBAL_FAILURES {
            let peer = ip(&format!("10.2.0.{i}"));
            assert!(l.allows(peer, now));
            l.begin(peer, now);
        }
        assert!(!l.allows(ip("198.51.100.1"), now));
        for i in 0..GLOBAL_FAILURES {
            l.end(ip(&format!("10.2.0.{i}")), true, now);
        }
        assert!(l.allows(ip("198.51.100.1"), now));
        assert!(l.is_empty());
    }

    #[test]
    fn malformed_logins_count_like_wrong_passwords() {
        let now = Instant::now();
        let mut l = Limiter::default();
        let a = ip("192.0.2.1");
        for _ in 0..PEER_FAILURES {
            assert!(l.allows(a, now));
            l.fail_now(a, now);
        }
        assert!(!l.allows(a, now));
        assert_eq!(l.global, Some(now + Limiter::GLOBAL_COST * PEER_FAILURES));
    }

    #[test]
    fn a_full_table_forgets_the_debt_paid_off_soonest() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        let blocked = PeerId::Uid(0);
        for _ in 0..PEER_FAILURES {
            l.fail_peer(blocked, t0);
        }
        let oldest = PeerId::Uid(1);
        l.fail_peer(oldest, t0);
        // Later failures from other peers fill the table (the limiter's
        // global limit is left out here to reach the bound).
        let t1 = t0 + Duration::from_millis(1);
        for uid in 2..MAX_PEERS as u32 {
            l.fail_peer(PeerId::Uid(uid), t1);
        }
        assert_eq!(l.len(), MAX_PEERS);
        let newest = PeerId::Uid(MAX_PEERS as u32);
        l.fail_peer(newest, t1 + Duration::from_millis(1));
        assert_eq!(l.len(), MAX_PEERS);
        assert!(!l.peers.contains_key(&oldest));
        assert!(l.peers.contains_key(&newest));
        // Filling the table does not lift a block: the blocked peer's debt
        // is the last to go.
        assert!(!l.allows(blocked, t1));
        for uid in MAX_PEERS as u32 + 1..3 * MAX_PEERS as u32 {
            l.fail_peer(PeerId::Uid(uid), t1 + Duration::from_millis(2));
        }
        assert!(!l.allows(blocked, t1));
    }

    #[test]
    fn paid_off_entries_are_dropped_as_others_fail() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        fail(&mut l, ip("192.0.2.1"), t0);
        fail(&mut l, ip("192.0.2.2"), t0 + WINDOW);
        assert_eq!(l.len(), 1);
    }

    fn logins() -> (Poll, Logins) {
        let poll = Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), Token(7)).unwrap();
        (poll, Logins::new(waker).unwrap())
    }

    /// Waits for the worker's wake-ups until `n` verdicts are in.
    fn verdicts(poll: &mut Poll, logins: &mut Logins, n: usize) -> Vec<Verdict> {
        let mut events = Events::with_capacity(4);
        let mut out = Vec::new();
        while out.len() < n {
            match poll.poll(&mut events, Some(Duration::from_secs(30))) {
                // Other tests in this process send signals.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => r.unwrap(),
            }
            assert!(!events.is_empty(), "the hashing worker did not answer");
            out.extend(logins.finished(Instant::now()));
        }
        out
    }

    #[test]
    fn the_worker_hashes_known_and_unknown_users_alike() {
        let (mut poll, mut logins) = logins();
        let stored = PasswordHash::parse(&PasswordHash::create("hunter2", 300).unwrap()).unwrap();
        let dummy = PasswordHash {
            salt: vec![0; stored.salt.len()],
            hash: [0; 32],
            ..stored.clone()
        };
        let now = Instant::now();
        let peer = ip("192.0.2.1");
        let conn = Token(1 << 16);
        let right = logins.submit(conn, peer, "hunter2".into(), stored.clone(), true, now);
        let wrong = logins.submit(conn, peer, "hunter3".into(), stored, true, now);
        let unknown = logins.submit(conn, peer, "hunter2".into(), dummy, false, now);
        assert_eq!((right, wrong, unknown), (Ok(0), Ok(1), Ok(2)));
        assert_eq!(logins.queued(), 3);
        let mut got = verdicts(&mut poll, &mut logins, 3);
        got.sort_by_key(|v| v.job);
        assert_eq!(
            got.iter()
                .map(|v| (v.token, v.job, v.matched))
                .collect::<Vec<_>>(),
            [(conn, 0, true), (conn, 1, false), (conn, 2, false)]
        );
        assert_eq!((logins.queued(), logins.hashed, logins.rounds), (0, 3, 900));
        // The success cleared the peer; the two failures stay.
        assert_eq!(logins.limiter.len(), 0);
        assert!(logins
            .limiter
            .global
            .is_some_and(|g| g >= now + Limiter::GLOBAL_COST * 2));
    }

    #[test]
    fn a_full_queue_is_busy_at_once() {
        let (mut poll, mut logins) = logins();
        let slow = PasswordHash {
            iterations: 2_000,
            salt: vec![0; 16],
            hash: [0; 32],
        };
        let now = Instant::now();
        for i in 0..MAX_QUEUED {
            // Distinct peers, so the per-peer limit stays out of the way.
            let peer = PeerId::Uid(i as u32);
            assert!(logins
                .submit(Token(1), peer, "x".into(), slow.clone(), false, now)
                .is_ok());
        }
        let extra = PeerId::Uid(MAX_QUEUED as u32);
        assert_eq!(logins.check(extra, now), Err(Refused::Busy));
        assert_eq!(
            logins.submit(Token(1), extra, "x".into(), slow.clone(), false, now),
            Err(Refused::Busy)
        );
        assert_eq!(verdicts(&mut poll, &mut logins, MAX_QUEUED).len(), MAX_QUEUED);
        assert_eq!(logins.check(extra, Instant::now()), Ok(()));
    }
}

//! Asking the router's rpcd whether a LuCI session may use Docker, or to
//! sign a router user in, without blocking the event loop: `ubus call
//! session access` (or `login`) runs as a child whose stdout is watched
//! like any other socket. A few children run at
//! once, and sessions rpcd refused are refused again for a while without
//! asking, so that made-up session ids cannot make us fork at will.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::access::auth::Rpcd;
use crate::crypto::sha256::sha256;
use crate::http::reply::json_text;
use crate::sys;
use crate::sys::process::Child;

/// Output beyond this is not an answer we want.
const MAX_OUTPUT: usize = 4096;
/// `ubus` children running at once; a check beyond this gets 503.
pub const MAX_CHILDREN: usize = 4;
/// How long a session rpcd refused is refused without asking again.
pub const REFUSED_TTL: Duration = Duration::from_secs(30);
/// Refused sessions remembered; the oldest is forgotten first.
pub const MAX_REFUSED: usize = 1024;

/// The bounds on asking ubus, owned by the event loop.
#[derive(Default)]
pub struct Ubus {
    /// Children running; each `AccessCheck` holds one and gives it back
    /// when it is dropped, however its connection ends. Only the loop's
    /// thread touches it; `Arc` lets the server move to a thread of its own.
    running: Arc<AtomicUsize>,
    /// Refused sessions by the SHA-256 of their id, until when.
    refused: HashMap<[u8; 32], Instant>,
    /// The same, in the order they were refused (all live equally long, so
    /// this is also the order they expire in); entries whose session was
    /// refused again since are skipped.
    refused_order: VecDeque<([u8; 32], Instant)>,
    /// Children started, and requests refused from the cache, since start.
    pub spawns: u64,
    pub refused_hits: u64,
}

/// Why a check could not start.
#[derive(Debug)]
pub enum Unavailable {
    /// `MAX_CHILDREN` are running.
    Busy,
    Spawn(io::Error),
}

impl Ubus {
    /// Starts `ubus call session access` for `session` and `function`, or
    /// `ubus call session login` for a router user's name and password.
    pub fn spawn(&mut self, rpcd: &Rpcd, call: &UbusCall) -> Result<AccessCheck, Unavailable> {
        if self.running() >= MAX_CHILDREN {
            return Err(Unavailable::Busy);
        }
        let check =
            AccessCheck::spawn(rpcd, call, ChildSlot::take(&self.running)).map_err(Unavailable::Spawn)?;
        self.spawns += 1;
        Ok(check)
    }

    /// Whether rpcd refused `session` within the last `REFUSED_TTL`.
    pub fn recently_refused(&mut self, session: &str, now: Instant) -> bool {
        let hit = self
            .refused
            .get(&sha256(session.as_bytes()))
            .is_some_and(|until| *until > now);
        self.refused_hits += u64::from(hit);
        hit
    }

    /// Remembers that rpcd refused `session`.
    pub fn refused(&mut self, session: &str, now: Instant) {
        while let Some(&(key, until)) = self.refused_order.front() {
            if until > now && self.refused_order.len() < MAX_REFUSED {
                break;
            }
            self.refused_order.pop_front();
            if self.refused.get(&key) == Some(&until) {
                self.refused.remove(&key);
            }
        }
        let key = sha256(session.as_bytes());
        let until = now + REFUSED_TTL;
        self.refused.insert(key, until);
        self.refused_order.push_back((key, until));
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Refused sessions remembered.
    pub fn refused_len(&self) -> usize {
        self.refused.len()
    }
}

/// One of the `MAX_CHILDREN` places, held by a running check.
struct ChildSlot(Arc<AtomicUsize>);

impl ChildSlot {
    fn take(running: &Arc<AtomicUsize>) -> ChildSlot {
        running.fetch_add(1, Ordering::Relaxed);
        ChildSlot(Arc::clone(running))
    }
}

impl Drop for ChildSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What rpcd is asked.
pub enum UbusCall {
    /// May `session` use the ACL `function` (`write` first, then `read`)?
    Access { session: String, function: &'static str },
    /// A router user's password, as LuCI's login checks it; the answer is
    /// a new session, whose access then decides the role.
    Login { username: String, password: String },
}

pub struct AccessCheck {
    child: Child,
    /// The child's stdout, until it is done.
    stdout: Option<File>,
    output: Vec<u8>,
    _slot: ChildSlot,
}

impl AccessCheck {
    fn spawn(rpcd: &Rpcd, call: &UbusCall, slot: ChildSlot) -> io::Result<AccessCheck> {
        let (method, query) = match call {
            UbusCall::Access { session, function } => (
                "access",
                serde_json::json!({
                    "ubus_rpc_session": session,
                    "scope": "access-group",
                    "object": rpcd.acl_object,
                    "function": function,
                }),
            ),
            UbusCall::Login { username, password } => (
                "login",
                serde_json::json!({ "username": username, "password": password }),
            ),
        };
        let (child, stdout) =
            sys::process::spawn(&rpcd.ubus, &["call", "session", method, &json_text(&query)])?;
        let mut check = AccessCheck {
            child,
            stdout: Some(File::from(stdout)),
            output: Vec::new(),
            _slot: slot,
        };
        // A blocking stdout would stall the event loop: such a child is ended.
        let nonblocking = match check.stdout.as_ref() {
            Some(stdout) => sys::set_nonblocking(stdout.as_fd()),
            None => Err(io::Error::other("no stdout")),
        };
        if let Err(e) = nonblocking {
            check.reap();
            return Err(e);
        }
        Ok(check)
    }

    pub fn fd(&self) -> Option<RawFd> {
        self.stdout.as_ref().map(|s| s.as_raw_fd())
    }

    /// Reads what is there; `Some(output)` once ubus has finished.
    pub fn poll(&mut self) -> Option<Vec<u8>> {
        let stdout = self.stdout.as_mut()?;
        let mut buf = [0u8; 512];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if self.output.len() + n <= MAX_OUTPUT => self.output.extend_from_slice(&buf[..n]),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.reap();
        Some(std::mem::take(&mut self.output))
    }

    /// Ends the child; it has closed stdout, so it is exiting anyway.
    pub fn reap(&mut self) {
        self.stdout = None;
        if !matches!(self.child.try_wait(), Ok(true)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> UbusCall {
        UbusCall::Access {
            session: "s".into(),
            function: "write",
        }
    }

    fn rpcd(ubus: &str) -> Rpcd {
        Rpcd {
            ubus: ubus.into(),
            acl_object: "luci-app-dockerman".into(),
        }
    }

    #[test]
    fn children_are_counted_until_their_check_is_dropped() {
        let mut ubus = Ubus::default();
        // `true` ignores its arguments and stands in for ubus here.
        let mut checks: Vec<AccessCheck> = (0..MAX_CHILDREN)
            .map(|_| ubus.spawn(&rpcd("true"), &access()).unwrap())
            .collect();
        assert_eq!((ubus.running(), ubus.spawns), (MAX_CHILDREN, MAX_CHILDREN as u64));
        assert!(matches!(
            ubus.spawn(&rpcd("true"), &access()),
            Err(Unavailable::Busy)
        ));
        for c in &mut checks {
            c.reap();
        }
        checks.pop();
        assert_eq!(ubus.running(), MAX_CHILDREN - 1);
        drop(checks);
        assert_eq!(ubus.running(), 0);
        assert!(matches!(
            ubus.spawn(&rpcd("/nonexistent/ubus"), &access()),
            Err(Unavailable::Spawn(_))
        ));
        assert_eq!((ubus.running(), ubus.spawns), (0, MAX_CHILDREN as u64));
    }

    #[test]
    fn refused_sessions_are_remembered_for_a_while() {
        let t0 = Instant::now();
        let mut ubus = Ubus::default();
        ubus.refused("a", t0);
        assert!(ubus.recently_refused("a", t0 + REFUSED_TTL - Duration::from_millis(1)));
        assert!(!ubus.recently_refused("b", t0));
        assert!(!ubus.recently_refused("a", t0 + REFUSED_TTL));
        assert_eq!(ubus.refused_hits, 1);
        // Refused again later: the newer entry is the one that counts.
        ubus.refused("a", t0 + Duration::from_secs(20));
        ubus.refused("c", t0 + REFUSED_TTL);
        assert!(ubus.recently_refused("a", t0 + Duration::from_secs(40)));
        assert_eq!(ubus.refused_len(), 2);
    }

    #[test]
    fn the_refused_table_forgets_the_oldest() {
        let now = Instant::now();
        let mut ubus = Ubus::default();
        for i in 0..=MAX_REFUSED {
            ubus.refused(&format!("{i:032x}"), now);
        }
        assert_eq!(
            (ubus.refused_len(), ubus.refused_order.len()),
            (MAX_REFUSED, MAX_REFUSED)
        );
        assert!(!ubus.recently_refused(&format!("{:032x}", 0), now));
        assert!(ubus.recently_refused(&format!("{:032x}", 1), now));
        assert!(ubus.recently_refused(&format!("{MAX_REFUSED:032x}"), now));
    }
}

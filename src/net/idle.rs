//! Idle connections to dockerd, kept for the next client: a connection a
//! finished client leaves behind, still good for another request, goes to
//! the next client instead of a new connect. A client that makes one
//! request per connection then costs two `epoll_ctl` calls instead of a
//! socket, a connect and a close (and an accept and a goroutine in dockerd).

use mio::{Interest, Registry, Token};

use crate::net::socket::Side;
use crate::stats::{Gauge, Held};

/// Idle connections kept at most; more are closed.
pub const MAX_IDLE: usize = 16;

/// While idle, connection `i` is registered under `Token(base + i)`: any
/// event on it means dockerd spoke or hung up, and it is closed.
pub struct IdleUpstreams {
    base: usize,
    /// Each idle connection holds its place in `count`.
    slots: Vec<Option<(Side, Held)>>,
    count: Gauge,
    /// Filled slots, the most recently idle last.
    order: Vec<usize>,
}

impl IdleUpstreams {
    pub fn new(base: usize, count: Gauge) -> IdleUpstreams {
        IdleUpstreams {
            base,
            slots: (0..MAX_IDLE).map(|_| None).collect(),
            count,
            order: Vec::with_capacity(MAX_IDLE),
        }
    }

    /// Whether `token` is one of ours.
    pub fn owns(&self, token: Token) -> bool {
        (self.base..self.base + MAX_IDLE).contains(&token.0)
    }

    /// Keeps a connection that is between requests and has said nothing
    /// since its last reply; it is closed instead if there is no room.
    pub fn give(&mut self, registry: &Registry, mut side: Side) {
        if side.readable || side.read_closed {
            return;
        }
        let Some(i) = self.slots.iter().position(Option::is_none) else {
            return;
        };
        if registry
            .reregister(&mut side.stream, Token(self.base + i), Interest::READABLE)
            .is_ok()
        {
            self.slots[i] = Some((side, self.count.hold()));
            self.order.push(i);
        }
    }

    /// The most recently idle connection, registered for `token`; it can
    /// take a request at once.
    pub fn take(&mut self, registry: &Registry, token: Token) -> Option<Side> {
        while let Some(i) = self.order.pop() {
            let Some((mut side, _held)) = self.slots[i].take() else {
                continue;
            };
            let interest = Interest::READABLE | Interest::WRITABLE;
            if registry.reregister(&mut side.stream, token, interest).is_ok() {
                // Its send buffer is empty: it is writable without waiting
                // for the event the registration brings.
                side.writable = true;
                return Some(side);
            }
        }
        None
    }

    /// An event on an idle connection: dockerd closed it, or spoke out of
    /// turn. Either way it is no good for another request.
    pub fn stale(&mut self, registry: &Registry, token: Token) {
        let i = token.0 - self.base;
        if let Some((mut side, _held)) = self.slots.get_mut(i).and_then(Option::take) {
            let _ = registry.deregister(&mut side.stream);
            self.order.retain(|&j| j != i);
        }
    }

    /// Closes them all (dockerd's address changed).
    pub fn clear(&mut self, registry: &Registry) {
        for i in std::mem::take(&mut self.order) {
            if let Some((mut side, _held)) = self.slots[i].take() {
                let _ = registry.deregister(&mut side.stream);
            }
        }
    }
}

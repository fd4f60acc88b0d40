//! Counters the status and metrics endpoints report, and gauges of live
//! things kept by ownership.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::looptime::LoopTime;

/// Counters the status endpoint reports.
pub struct Stats {
    pub started: Instant,
    pub connections_active: Gauge,
    pub connections_total: u64,
    /// Consoles with a browser, under `max_consoles`.
    pub consoles: Gauge,
    /// Consoles whose browser is gone and whose exec is still being ended.
    pub consoles_ending: Gauge,
    /// Upstream connections kept idle for the next client.
    pub upstream_idle: Gauge,
    /// `accept` found no descriptor free (EMFILE or ENFILE).
    pub descriptors_exhausted: u64,
    /// Clients answered 503 through the reserved descriptor.
    pub refused_no_descriptor: u64,
    pub requests: u64,
    pub rejected: u64,
    pub upstream_errors: u64,
    pub allowed: u64,
    /// Denials per policy rule (dry-run "would deny" included).
    pub denied: BTreeMap<&'static str, u64>,
    pub loop_time: LoopTime,
}

impl Stats {
    pub fn new(now: Instant) -> Stats {
        Stats {
            started: now,
            connections_active: Gauge::default(),
            connections_total: 0,
            consoles: Gauge::default(),
            consoles_ending: Gauge::default(),
            upstream_idle: Gauge::default(),
            descriptors_exhausted: 0,
            refused_no_descriptor: 0,
            requests: 0,
            rejected: 0,
            upstream_errors: 0,
            allowed: 0,
            denied: BTreeMap::new(),
            loop_time: LoopTime::new(now),
        }
    }

    pub fn deny(&mut self, rule: &'static str) {
        *self.denied.entry(rule).or_insert(0) += 1;
    }
}

/// What the TLS fronts report; all zero in a build without TLS.
#[derive(Debug, Default, Clone, Copy)]
pub struct TlsFigures {
    /// Fronts open: clients in their handshake, served, or being sent a
    /// closed connection's last bytes.
    pub fronts: usize,
    pub handshaking: usize,
    /// Handshakes cut to make room under `tls.max_handshakes`, cut at
    /// `tls.handshake_timeout_secs`, and refused by rustls (a protocol
    /// error, or a client certificate that did not verify).
    pub evicted: u64,
    pub timed_out: u64,
    pub failed: u64,
}

/// A count of live things kept by ownership: `hold` adds one and dropping
/// the `Held` takes it away, so no path can forget it or take it twice.
/// (Atomic only so that the server may run on a thread of its own, as the
/// self-test does; one thread ever touches it.)
#[derive(Default, Clone)]
pub struct Gauge(Arc<AtomicUsize>);

pub struct Held(Arc<AtomicUsize>);

impl Gauge {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub fn hold(&self) -> Held {
        self.0.fetch_add(1, Ordering::Relaxed);
        Held(Arc::clone(&self.0))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_counts_what_is_held() {
        let g = Gauge::default();
        let a = g.hold();
        let b = g.hold();
        assert_eq!(g.get(), 2);
        drop(a);
        assert_eq!(g.get(), 1);
        drop(b);
        assert_eq!(g.get(), 0);
    }
}

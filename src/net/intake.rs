//! Who gets a connection slot: the per-address cap and, when a cap is
//! reached, which connection makes room. Only a connection still sending
//! its first request head can be evicted (the oldest first): it has cost
//! the client nothing to open, while streams, tunnels, consoles and
//! connections that were already served carry someone's work.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::access::auth::PeerId;

/// What to do with a client just accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Admit,
    /// Admit it once the connection in this slot is closed.
    EvictFirst(usize),
    /// Every slot it could take serves someone: turn it away.
    Refuse,
}

/// Connections open per address (a peer's `limit_key`: an IPv4 address, an
/// IPv6 /64 or a unix uid), and those still sending their first head
/// in accept order. Every connection is identified by its accept serial.
#[derive(Default)]
pub struct Intake {
    open: HashMap<PeerId, usize>,
    /// Serial → slot; serials grow, so the first entry is the oldest.
    first_heads: BTreeMap<u64, usize>,
    first_heads_by_addr: BTreeSet<(PeerId, u64)>,
    pub evicted: u64,
    pub refused: u64,
}

impl Intake {
    pub fn decide(&self, key: PeerId, active: usize, max_total: usize, max_per_addr: usize) -> Decision {
        if self.open_from(key) >= max_per_addr {
            let oldest = self.first_heads_by_addr.range((key, 0)..).next();
            return match oldest.filter(|(k, _)| *k == key) {
                Some((_, serial)) => self
                    .first_heads
                    .get(serial)
                    .map_or(Decision::Refuse, |s| Decision::EvictFirst(*s)),
                None => Decision::Refuse,
            };
        }
        if active >= max_total {
            return match self.first_heads.values().next() {
                Some(slot) => Decision::EvictFirst(*slot),
                None => Decision::Refuse,
            };
        }
        Decision::Admit
    }

    /// Whether a full server could still make room for a new client.
    pub fn can_evict(&self) -> bool {
        !self.first_heads.is_empty()
    }

    pub fn opened(&mut self, key: PeerId, serial: u64, slot: usize) {
        *self.open.entry(key).or_insert(0) += 1;
        self.first_heads.insert(serial, slot);
        self.first_heads_by_addr.insert((key, serial));
    }

    /// Its first head is complete: from now on it is never evicted.
    pub fn served(&mut self, key: PeerId, serial: u64) {
        self.first_heads.remove(&serial);
        self.first_heads_by_addr.remove(&(key, serial));
    }

    pub fn closed(&mut self, key: PeerId, serial: u64) {
        self.served(key, serial);
        if let Some(n) = self.open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&key);
            }
        }
    }

    pub fn open_from(&self, key: PeerId) -> usize {
        self.open.get(&key).copied().unwrap_or(0)
    }

    /// The most connections any one address has open (a scan: for status).
    pub fn busiest(&self) -> usize {
        self.open.values().copied().max().unwrap_or(0)
    }

    pub fn first_heads(&self) -> usize {
        self.first_heads.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> PeerId {
        PeerId::Ip(s.parse().unwrap()).limit_key()
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
        assert_ne!(ip("192.0.2.7"), ip("192.0.2.8"));
        assert_ne!(PeerId::Uid(0).limit_key(), ip("0.0.0.0"));
    }

    #[test]
    fn the_per_address_cap_evicts_that_address_own_oldest_first_head() {
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let mut adm = Intake::default();
        adm.opened(b, 1, 10);
        adm.opened(a, 2, 20);
        adm.opened(a, 3, 30);
        assert_eq!(adm.decide(a, 3, 256, 2), Decision::EvictFirst(20));
        adm.served(a, 2);
        assert_eq!(adm.decide(a, 3, 256, 2), Decision::EvictFirst(30));
        adm.served(a, 3);
        assert_eq!(adm.decide(a, 3, 256, 2), Decision::Refuse);
        assert_eq!(adm.decide(b, 3, 256, 2), Decision::Admit);
    }

    #[test]
    fn a_full_server_evicts_the_oldest_first_head_of_anyone() {
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let mut adm = Intake::default();
        adm.opened(a, 1, 10);
        adm.opened(b, 2, 20);
        adm.opened(a, 3, 30);
        adm.served(a, 1);
        assert_eq!(adm.decide(b, 3, 3, 64), Decision::EvictFirst(20));
        adm.served(b, 2);
        adm.served(a, 3);
        assert!(!adm.can_evict());
        assert_eq!(adm.decide(b, 3, 3, 64), Decision::Refuse);
        assert_eq!(adm.busiest(), 2);
        adm.closed(a, 1);
        adm.closed(a, 3);
        assert_eq!((adm.open_from(a), adm.busiest()), (0, 1));
    }
}

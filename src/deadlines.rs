//! The loop's deadlines, for slots of connections or TLS fronts, in one
//! heap with at most one entry per slot: a deadline that moves later (every
//! keep-alive request) keeps the entry already armed, which re-arms when
//! it fires.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Deadlines {
    /// Files `deadline` for `slot` unless an entry at or before it is
    /// armed already; `armed` is the slot's record of its entry.
    pub fn arm(&mut self, slot: usize, armed: &mut Option<Instant>, deadline: Option<Instant>) {
        if let Some(at) = deadline.filter(|at| armed.is_none_or(|a| *at < a)) {
            *armed = Some(at);
            self.heap.push(Reverse((at, slot)));
        }
    }

    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next entry due by `now`, as its slot and time. It counts only if
    /// `fired` says it is the one the slot armed.
    pub fn pop_due(&mut self, now: Instant) -> Option<(usize, Instant)> {
        let Reverse((at, slot)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        Some((slot, at))
    }

    /// Whether the entry at `at` is the one the slot armed (not one a
    /// closed slot left, or one replaced by an earlier deadline); if so,
    /// the slot has none armed any more.
    pub fn fired(armed: &mut Option<Instant>, at: Instant) -> bool {
        let fired = *armed == Some(at);
        if fired {
            *armed = None;
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_entry_per_slot_and_only_the_armed_one_fires() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = Deadlines::default();
        let mut armed = None;
        d.arm(3, &mut armed, Some(t0 + 2 * s));
        // Later: the entry armed stays.
        d.arm(3, &mut armed, Some(t0 + 5 * s));
        assert_eq!((d.heap.len(), armed), (1, Some(t0 + 2 * s)));
        // Earlier: a new entry, and the old one no longer counts.
        d.arm(3, &mut armed, Some(t0 + s));
        assert_eq!(d.next(), Some(t0 + s));
        assert_eq!(d.pop_due(t0), None);
        let (slot, at) = d.pop_due(t0 + 3 * s).unwrap();
        assert!(slot == 3 && Deadlines::fired(&mut armed, at) && armed.is_none());
        let (_, stale) = d.pop_due(t0 + 3 * s).unwrap();
        assert!(!Deadlines::fired(&mut armed, stale));
        assert_eq!(d.pop_due(t0 + 9 * s), None);
    }
}

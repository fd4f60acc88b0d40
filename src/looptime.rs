//! Where the event loop's time goes: the longest iteration since start and
//! in the last minute, and the time each kind of work took. One thread
//! serves everyone, so these are the figures that say whether anyone waited.

use std::fmt::Write;
use std::time::{Duration, Instant};

/// Kinds of work the loop does. `Policy` and `Spawn` happen inside `Io` and
/// are counted there too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Accept,
    Io,
    Timers,
    Signals,
    /// Checking a request body against the policy.
    Policy,
    /// Answering the logins the hashing worker has finished (the hashing
    /// itself runs on the worker, off the loop).
    Login,
    /// Starting a helper process (ubus).
    Spawn,
    /// Inflating a web UI asset for a client without gzip.
    Inflate,
}

impl Work {
    pub const ALL: [Work; 8] = [
        Work::Accept,
        Work::Io,
        Work::Timers,
        Work::Signals,
        Work::Policy,
        Work::Login,
        Work::Spawn,
        Work::Inflate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Work::Accept => "accept",
            Work::Io => "io",
            Work::Timers => "timers",
            Work::Signals => "signals",
            Work::Policy => "policy",
            Work::Login => "login",
            Work::Spawn => "spawn",
            Work::Inflate => "inflate",
        }
    }
}

/// A Prometheus metric family of the per-work tallies: name, type, value.
type Family = (&'static str, &'static str, fn(&Tally) -> Seconds);

/// A duration in seconds as Prometheus text, exactly: `0.000123`, `2`.
/// Written from the integer seconds and nanoseconds, so that no float
/// formatting code is linked in; a count is written as whole seconds.
struct Seconds(Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        if nanos == 0 {
            return write!(f, "{secs}");
        }
        let mut digits = format!("{nanos:09}");
        while digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "{secs}.{digits}")
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub count: u64,
    pub total: Duration,
    pub longest: Duration,
}

/// The last minute as six ten-second buckets, each remembering which ten
/// seconds it holds so that a stale one is never read.
const BUCKETS: usize = 6;
const BUCKET_SECS: u64 = 10;

pub struct LoopTime {
    started: Instant,
    longest: Duration,
    recent: [(u64, Duration); BUCKETS],
    work: [Tally; Work::ALL.len()],
}

impl LoopTime {
    pub fn new(started: Instant) -> LoopTime {
        LoopTime {
            started,
            longest: Duration::ZERO,
            recent: [(u64::MAX, Duration::ZERO); BUCKETS],
            work: [Tally::default(); Work::ALL.len()],
        }
    }

    fn period(&self, now: Instant) -> u64 {
        now.duration_since(self.started).as_secs() / BUCKET_SECS
    }

    /// One loop iteration that ended at `now` and took `took`.
    pub fn iteration(&mut self, took: Duration, now: Instant) {
        self.longest = self.longest.max(took);
        let period = self.period(now);
        let bucket = &mut self.recent[(period % BUCKETS as u64) as usize];
        if bucket.0 != period {
            *bucket = (period, Duration::ZERO);
        }
        bucket.1 = bucket.1.max(took);
    }

    pub fn work(&mut self, kind: Work, took: Duration) {
        let t = &mut self.work[kind as usize];
        t.count += 1;
        t.total += took;
        t.longest = t.longest.max(took);
    }

    /// Runs `f`, counting its time as `kind`.
    pub fn timed<T>(&mut self, kind: Work, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.work(kind, start.elapsed());
        out
    }

    pub fn longest(&self) -> Duration {
        self.longest
    }

    /// The longest iteration of the last minute (up to ten seconds more).
    pub fn longest_recent(&self, now: Instant) -> Duration {
        let period = self.period(now);
        self.recent
            .iter()
            .filter(|(p, _)| *p != u64::MAX && period.saturating_sub(*p) < BUCKETS as u64)
            .map(|(_, d)| *d)
            .max()
            .unwrap_or_default()
    }

    pub fn tally(&self, kind: Work) -> Tally {
        self.work[kind as usize]
    }

    /// The figures as JSON for the status endpoint, in microseconds.
    pub fn json(&self, now: Instant) -> serde_json::Value {
        let mut work = serde_json::Map::new();
        for kind in Work::ALL {
            let t = self.tally(kind);
            work.insert(
                kind.name().into(),
                serde_json::json!({
                    "count": t.count,
                    "total_us": t.total.as_micros() as u64,
                    "longest_us": t.longest.as_micros() as u64,
                }),
            );
        }
        serde_json::json!({
            "longest_iteration_us": self.longest.as_micros() as u64,
            "longest_iteration_last_minute_us": self.longest_recent(now).as_micros() as u64,
            "work": work,
        })
    }

    /// The same figures as Prometheus text.
    pub fn prometheus(&self, out: &mut String, now: Instant) {
        let secs = Seconds;
        let _ = writeln!(
            out,
            "# TYPE dockermand_loop_iteration_longest_seconds gauge\n\
             dockermand_loop_iteration_longest_seconds{{window=\"start\"}} {}\n\
             dockermand_loop_iteration_longest_seconds{{window=\"minute\"}} {}",
            secs(self.longest),
            secs(self.longest_recent(now))
        );
        let families: [Family; 3] = [
            ("dockermand_loop_work_seconds_total", "counter", |t| {
                Seconds(t.total)
            }),
            ("dockermand_loop_work_total", "counter", |t| {
                Seconds(Duration::from_secs(t.count))
            }),
            ("dockermand_loop_work_longest_seconds", "gauge", |t| {
                Seconds(t.longest)
            }),
        ];
        for (family, kind, value) in families {
            let _ = writeln!(out, "# TYPE {family} {kind}");
            for work in Work::ALL {
                let _ = writeln!(
                    out,
                    "{family}{{work=\"{}\"}} {}",
                    work.name(),
                    value(&self.tally(work))
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_minute_forgets_older_iterations() {
        let t0 = Instant::now();
        let mut lt = LoopTime::new(t0);
        lt.iteration(Duration::from_millis(50), t0);
        lt.iteration(Duration::from_millis(5), t0 + Duration::from_secs(30));
        assert_eq!(
            lt.longest_recent(t0 + Duration::from_secs(30)),
            Duration::from_millis(50)
        );
        assert_eq!(
            lt.longest_recent(t0 + Duration::from_secs(65)),
            Duration::from_millis(5)
        );
        assert_eq!(lt.longest_recent(t0 + Duration::from_secs(200)), Duration::ZERO);
        assert_eq!(lt.longest(), Duration::from_millis(50));
    }

    #[test]
    fn work_is_tallied_by_kind() {
        let mut lt = LoopTime::new(Instant::now());
        lt.work(Work::Policy, Duration::from_micros(30));
        lt.work(Work::Policy, Duration::from_micros(10));
        let t = lt.tally(Work::Policy);
        assert_eq!(
            (t.count, t.total, t.longest),
            (2, Duration::from_micros(40), Duration::from_micros(30))
        );
        assert_eq!(lt.tally(Work::Login).count, 0);
        let mut text = String::new();
        lt.prometheus(&mut text, Instant::now());
        assert!(text.contains("dockermand_loop_work_total{work=\"policy\"} 2\n"));
        assert!(text.contains("dockermand_loop_work_seconds_total{work=\"policy\"} 0.00004\n"));
        assert!(text.contains("dockermand_loop_work_longest_seconds{work=\"login\"} 0\n"));
    }

    /// The same text the f64 these figures used to be printed as gave,
    /// wherever that f64 was the one nearest the duration: always below a
    /// second. Above, `as_secs_f64` rounds twice and was now and then a
    /// neighbour, shown with its noise (`3.7587025130000002`), which is now
    /// written exactly (`3.758702513`).
    #[test]
    fn seconds_are_written_as_their_f64_was() {
        for (secs, nanos) in [
            (0, 0),
            (0, 1),
            (0, 40_000),
            (0, 123_456_789),
            (0, 999_999_999),
            (1, 0),
            (3, 100_000_000),
            (59, 5),
            (86_400, 250_000_000),
            (999_999, 999_999_999),
        ] {
            let d = Duration::new(secs, nanos);
            assert_eq!(Seconds(d).to_string(), d.as_secs_f64().to_string(), "{d:?}");
        }
        assert_eq!(Seconds(Duration::new(3, 758_702_513)).to_string(), "3.758702513");
    }
}

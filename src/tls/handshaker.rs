//! A worker thread that processes TLS handshake messages: signing with the
//! server key and verifying client certificates take milliseconds on a
//! router, which the event loop must not spend. Like the password hashing
//! worker, it reports back through a `mio::Waker`.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use mio::Waker;
use rustls::ServerConnection;

use crate::sys;

/// A handshake's state on its way through the worker, with the front it
/// belongs to (its slot and serial).
pub struct Job {
    pub slot: usize,
    pub serial: u64,
    pub tls: Box<ServerConnection>,
    pub processed: Result<(), rustls::Error>,
    /// Set when the front is closed meanwhile: the worker skips the job.
    cancelled: Arc<AtomicBool>,
}

pub struct Handshaker {
    jobs: Sender<Job>,
    done: Receiver<Job>,
    /// Jobs sent and not yet taken back.
    in_flight: usize,
}

impl Handshaker {
    /// Starts the worker; it wakes `waker` whenever a job is done and ends
    /// when the `Handshaker` is dropped.
    pub fn new(waker: Waker) -> io::Result<Handshaker> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (outbox, done) = mpsc::channel::<Job>();
        sys::thread::spawn(Some(c"dockermand-tls"), move || {
            for mut job in inbox {
                if !job.cancelled.load(Ordering::Relaxed) {
                    job.processed = job.tls.process_new_packets().map(drop);
                }
                if outbox.send(job).is_err() || waker.wake().is_err() {
                    return;
                }
            }
        })?;
        Ok(Handshaker {
            jobs,
            done,
            in_flight: 0,
        })
    }

    /// Whether fewer than `limit` jobs are out. Jobs of fronts evicted
    /// while the worker holds them count until taken back: without the
    /// limit, a flood of ClientHellos could queue them without end.
    pub fn has_room(&self, limit: usize) -> bool {
        self.in_flight < limit
    }

    /// Hands a handshake to the worker and returns what cancels it; `None`
    /// when the worker is gone.
    pub fn submit(
        &mut self,
        slot: usize,
        serial: u64,
        tls: Box<ServerConnection>,
    ) -> Option<Arc<AtomicBool>> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let job = Job {
            slot,
            serial,
            tls,
            processed: Ok(()),
            cancelled: Arc::clone(&cancelled),
        };
        self.jobs.send(job).ok()?;
        self.in_flight += 1;
        Some(cancelled)
    }

    /// The jobs done since the last call.
    pub fn finished(&mut self) -> Vec<Job> {
        let done: Vec<Job> = self.done.try_iter().collect();
        self.in_flight -= done.len();
        done
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mio::{Events, Poll, Token};

    use super::*;
    use crate::tls::test_pki::server_config;

    /// A handshake that has read plain HTTP: processing it fails.
    fn state() -> Box<ServerConnection> {
        let mut tls = Box::new(ServerConnection::new(server_config()).unwrap());
        tls.read_tls(&mut &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..])
            .unwrap();
        tls
    }

    #[test]
    fn the_worker_holds_at_most_the_limit_and_reports_every_job_back() {
        let mut poll = Poll::new().unwrap();
        let mut hs = Handshaker::new(Waker::new(poll.registry(), Token(1)).unwrap()).unwrap();
        for (slot, serial) in [(0, 1), (1, 2)] {
            assert!(hs.has_room(2));
            hs.submit(slot, serial, state()).unwrap();
        }
        assert!(!hs.has_room(2), "room for a third job past the limit");
        let mut done = Vec::new();
        let mut events = Events::with_capacity(4);
        while done.len() < 2 {
            poll.poll(&mut events, Some(Duration::from_secs(10))).unwrap();
            assert!(!events.is_empty(), "the worker never woke the loop");
            done.extend(hs.finished());
        }
        assert_eq!(done.iter().map(|j| j.serial).collect::<Vec<_>>(), vec![1, 2]);
        assert!(
            done.iter().all(|j| j.processed.is_err()),
            "plain HTTP passed as a handshake"
        );
        assert!(hs.has_room(2), "no room once taken back");
    }
}

//! A worker thread that processes TLS handshake messages: signing with the
//! server key and verifying client certificates take milliseconds on a
//! router, which the event loop must not spend. Like the password hashing
//! worker, it reports back through a `mio::Waker`.

use std::io;
use std::sync::mpsc::{self, Receiver, Sender};

use mio::Waker;
use rustls::ServerConnection;

/// A handshake's state on its way through the worker, with the front it
/// belongs to (its slot and serial).
pub struct Job {
    pub slot: usize,
    pub serial: u64,
    pub tls: Box<ServerConnection>,
    pub processed: Result<(), rustls::Error>,
}

pub struct Handshaker {
    jobs: Sender<Job>,
    done: Receiver<Job>,
}

impl Handshaker {
    /// Starts the worker; it wakes `waker` whenever a job is done and ends
    /// when the `Handshaker` is dropped. Its queue holds at most one job per
    /// front in its handshake, which `tls.max_handshakes` bounds.
    pub fn new(waker: Waker) -> io::Result<Handshaker> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (outbox, done) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("dockermand-tls".into())
            .spawn(move || {
                for mut job in inbox {
                    job.processed = job.tls.process_new_packets().map(drop);
                    if outbox.send(job).is_err() || waker.wake().is_err() {
                        return;
                    }
                }
            })?;
        Ok(Handshaker { jobs, done })
    }

    /// Hands a handshake to the worker; `false` if it is gone.
    pub fn submit(&self, slot: usize, serial: u64, tls: Box<ServerConnection>) -> bool {
        let job = Job {
            slot,
            serial,
            tls,
            processed: Ok(()),
        };
        self.jobs.send(job).is_ok()
    }

    /// The jobs done since the last call.
    pub fn finished(&self) -> impl Iterator<Item = Job> + '_ {
        self.done.try_iter()
    }
}

//! Shared, bounded resources of the single event-loop thread: splice pipes,
//! 32 KiB copy buffers, the scratch buffer heads are peeked into, the memory
//! budget of checked bodies, and the byte counters the status endpoint shows.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Size of every copy buffer and of every splice pipe.
pub const CHUNK: usize = 32 * 1024;
/// Idle pipes and buffers kept for reuse; the rest are freed.
const KEEP_IDLE: usize = 32;

/// A kernel pipe that `splice` moves bytes through; `len` bytes are inside.
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
    pub len: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and ours.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A smaller pipe is fine (the default is 64 KiB); failure only costs memory.
        // SAFETY: F_SETPIPE_SZ on an open pipe descriptor.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
        Ok(Pipe { read, write, len: 0 })
    }
}

/// A pooled copy buffer with its unread window `start..end`.
pub struct Buffer {
    pub data: Box<[u8]>,
    pub start: usize,
    pub end: usize,
}

impl Buffer {
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

#[derive(Default, Clone, Copy)]
pub struct ByteCounters {
    pub spliced: u64,
    pub copied: u64,
}

/// The most raw bytes a body with `limit` bytes of data may take: chunk
/// framing comes on top of the data.
pub fn largest_raw_body(limit: usize) -> usize {
    limit + limit / 4 + 1024
}

/// The memory all checked request bodies may hold at once. Each body
/// reserves its largest size before its first byte is read; the reservation
/// goes back when its guard is dropped, whatever path the request took.
/// (Only the loop thread uses it; `Arc` lets a server move to a thread.)
pub struct BodyBudget {
    in_use: Arc<AtomicUsize>,
    pub limit: usize,
    /// Bodies turned away because the budget was spent.
    pub refused: u64,
}

/// Bytes of the body budget held by one request body.
#[derive(Debug)]
pub struct BodyReservation {
    bytes: usize,
    in_use: Arc<AtomicUsize>,
}

impl BodyBudget {
    pub fn new(limit: usize) -> BodyBudget {
        BodyBudget {
            in_use: Arc::new(AtomicUsize::new(0)),
            limit,
            refused: 0,
        }
    }

    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// `None` when `bytes` more would go over the limit.
    pub fn reserve(&mut self, bytes: usize) -> Option<BodyReservation> {
        if bytes > self.limit.saturating_sub(self.in_use()) {
            self.refused += 1;
            return None;
        }
        self.in_use.fetch_add(bytes, Ordering::Relaxed);
        Some(BodyReservation {
            bytes,
            in_use: Arc::clone(&self.in_use),
        })
    }
}

impl BodyReservation {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for BodyReservation {
    fn drop(&mut self) {
        self.in_use.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

pub struct Resources {
    pipes: Vec<Pipe>,
    buffers: Vec<Box<[u8]>>,
    pub buffers_in_use: usize,
    pub pipes_in_use: usize,
    /// Heads are peeked here and parsed in place; never held across events.
    pub scratch: Box<[u8]>,
    pub bytes: ByteCounters,
    pub splice_enabled: bool,
    pub body_budget: BodyBudget,
}

impl Resources {
    pub fn new(max_head_bytes: usize, splice_enabled: bool, body_budget: usize) -> Resources {
        Resources {
            pipes: Vec::new(),
            buffers: Vec::new(),
            buffers_in_use: 0,
            pipes_in_use: 0,
            scratch: vec![0; max_head_bytes.max(CHUNK)].into_boxed_slice(),
            bytes: ByteCounters::default(),
            splice_enabled,
            body_budget: BodyBudget::new(body_budget),
        }
    }

    pub fn resize_scratch(&mut self, max_head_bytes: usize) {
        if self.scratch.len() != max_head_bytes.max(CHUNK) {
            self.scratch = vec![0; max_head_bytes.max(CHUNK)].into_boxed_slice();
        }
    }

    pub fn take_pipe(&mut self) -> io::Result<Pipe> {
        let pipe = match self.pipes.pop() {
            Some(p) => p,
            None => Pipe::new()?,
        };
        self.pipes_in_use += 1;
        Ok(pipe)
    }

    /// A pipe with bytes still inside is closed rather than reused.
    pub fn give_pipe(&mut self, pipe: Pipe) {
        self.pipes_in_use -= 1;
        if pipe.len == 0 && self.pipes.len() < KEEP_IDLE {
            self.pipes.push(pipe);
        }
    }

    pub fn take_buffer(&mut self) -> Buffer {
        let data = self
            .buffers
            .pop()
            .unwrap_or_else(|| vec![0; CHUNK].into_boxed_slice());
        self.buffers_in_use += 1;
        Buffer {
            data,
            start: 0,
            end: 0,
        }
    }

    pub fn give_buffer(&mut self, buffer: Buffer) {
        self.buffers_in_use -= 1;
        if self.buffers.len() < KEEP_IDLE {
            self.buffers.push(buffer.data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_reservations_stay_within_the_budget_and_return_on_drop() {
        let mut budget = BodyBudget::new(100);
        let a = budget.reserve(60).unwrap();
        assert!(budget.reserve(41).is_none());
        let b = budget.reserve(40).unwrap();
        assert_eq!((budget.in_use(), budget.refused), (100, 1));
        drop(a);
        assert_eq!(budget.in_use(), 40);
        assert!(budget.reserve(61).is_none());
        drop(b);
        assert_eq!(budget.in_use(), 0);
        assert_eq!(budget.reserve(100).map(|r| r.bytes()), Some(100));
    }
}

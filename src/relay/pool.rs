//! Shared, bounded resources of the single event-loop thread: splice pipes
//! (a few of them large), 32 KiB copy buffers, the scratch buffer heads are
//! read into, the memory budget of checked bodies, and the byte counters the
//! status endpoint shows.
//!
//! Pipes and buffers are lent out and come back by ownership: dropping a
//! `Pipe` or `Buffer`, on whatever path, puts it back on its shelf and takes
//! it off the in-use count, so no path can forget one or give one back twice.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::sys;

/// Size of every copy buffer.
pub const CHUNK: usize = 32 * 1024;
/// Capacity of a splice pipe. Pipe contents are kernel memory while bytes
/// are in flight (an idle pipe holds none), so most pipes stay small.
pub const PIPE_SIZE: usize = 32 * 1024;
/// Capacity of a large pipe: each splice from the source then takes more, so
/// a large transfer costs fewer calls per GiB (about 20 % less CPU for a
/// download here). Only `LARGE_PIPES` pipes are large at a time, so they can
/// hold at most 2 MiB of kernel memory in all.
pub const LARGE_PIPE_SIZE: usize = 256 * 1024;
const LARGE_PIPES: usize = 8;
/// Idle pipes and buffers kept for reuse; the rest are freed.
const KEEP_IDLE: usize = 32;

/// Idle items of one kind and how many are lent out. Only the loop thread
/// uses a shelf; the `Arc` and `Mutex` (never contended, so one atomic
/// operation each way) are there because a `Server` may be built on one
/// thread and run on another, as the self-test does.
struct Shelf<T> {
    idle: Mutex<Vec<T>>,
    lent: AtomicUsize,
}

impl<T> Shelf<T> {
    fn new() -> Arc<Shelf<T>> {
        Arc::new(Shelf {
            idle: Mutex::new(Vec::new()),
            lent: AtomicUsize::new(0),
        })
    }

    fn lent(&self) -> usize {
        self.lent.load(Ordering::Relaxed)
    }

    /// An idle item to reuse, if there is one.
    fn reuse(&self) -> Option<T> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    /// Counts one more item lent out until the loan is dropped.
    fn loan(self: &Arc<Self>) -> Loan<T> {
        self.lent.fetch_add(1, Ordering::Relaxed);
        Loan(Arc::clone(self))
    }
}

/// One lent item's place in its shelf's count; dropping it ends the loan.
struct Loan<T>(Arc<Shelf<T>>);

impl<T> Loan<T> {
    /// Keeps `item` for reuse if the shelf has room; otherwise it is freed.
    fn put_back(&self, item: T) {
        if let Ok(mut idle) = self.0.idle.lock() {
            if idle.len() < KEEP_IDLE {
                idle.push(item);
            }
        }
    }
}

impl<T> Drop for Loan<T> {
    fn drop(&mut self) {
        self.0.lent.fetch_sub(1, Ordering::Relaxed);
    }
}

struct PipeEnds {
    read: OwnedFd,
    write: OwnedFd,
    /// What one splice may put in.
    capacity: usize,
    /// A large pipe's place among the `LARGE_PIPES`, given up when it closes.
    _large: Option<Loan<()>>,
}

impl PipeEnds {
    fn new(large: &Arc<Shelf<()>>) -> io::Result<PipeEnds> {
        let (read, write) = sys::pipe()?;
        if large.lent() < LARGE_PIPES {
            if let Ok(capacity) = sys::set_pipe_size(write.as_fd(), LARGE_PIPE_SIZE) {
                let _large = Some(large.loan());
                return Ok(PipeEnds {
                    read,
                    write,
                    capacity,
                    _large,
                });
            }
        }
        // Failing leaves the kernel's default, which is larger: asking for
        // no more than `PIPE_SIZE` stays within it either way.
        let _ = sys::set_pipe_size(write.as_fd(), PIPE_SIZE);
        Ok(PipeEnds {
            read,
            write,
            capacity: PIPE_SIZE,
            _large: None,
        })
    }
}

/// A kernel pipe that `splice` moves bytes through; `len` bytes are inside.
/// Dropped, it goes back to the pool, or is closed if bytes are left in it.
pub struct Pipe {
    /// Always `Some` until the drop hands the ends back.
    ends: Option<PipeEnds>,
    pub len: usize,
    loan: Loan<PipeEnds>,
}

impl Pipe {
    fn ends(&self) -> &PipeEnds {
        self.ends.as_ref().expect("a live pipe has its ends")
    }

    pub fn read_end(&self) -> BorrowedFd<'_> {
        self.ends().read.as_fd()
    }

    pub fn write_end(&self) -> BorrowedFd<'_> {
        self.ends().write.as_fd()
    }

    /// The most one splice may put in.
    pub fn capacity(&self) -> usize {
        self.ends().capacity
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if let Some(ends) = self.ends.take().filter(|_| self.len == 0) {
            self.loan.put_back(ends);
        }
    }
}

/// A pooled copy buffer with its unread window `start..end`. Dropped, it
/// goes back to the pool.
pub struct Buffer {
    pub data: Box<[u8]>,
    pub start: usize,
    pub end: usize,
    loan: Loan<Box<[u8]>>,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // An empty boxed slice takes no allocation.
        self.loan.put_back(std::mem::take(&mut self.data));
    }
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
    pipes: Arc<Shelf<PipeEnds>>,
    /// Large pipes open, idle or lent.
    large_pipes: Arc<Shelf<()>>,
    buffers: Arc<Shelf<Box<[u8]>>>,
    /// Heads are peeked here and parsed in place; never held across events.
    pub scratch: Box<[u8]>,
    pub bytes: ByteCounters,
    pub splice_enabled: bool,
    pub body_budget: BodyBudget,
}

impl Resources {
    pub fn new(max_head_bytes: usize, splice_enabled: bool, body_budget: usize) -> Resources {
        Resources {
            pipes: Shelf::new(),
            large_pipes: Shelf::new(),
            buffers: Shelf::new(),
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

    pub fn pipes_in_use(&self) -> usize {
        self.pipes.lent()
    }

    pub fn buffers_in_use(&self) -> usize {
        self.buffers.lent()
    }

    pub fn take_pipe(&self) -> io::Result<Pipe> {
        let ends = match self.pipes.reuse() {
            Some(ends) => ends,
            None => PipeEnds::new(&self.large_pipes)?,
        };
        Ok(Pipe {
            ends: Some(ends),
            len: 0,
            loan: self.pipes.loan(),
        })
    }

    pub fn take_buffer(&self) -> Buffer {
        let data = self
            .buffers
            .reuse()
            .unwrap_or_else(|| vec![0; CHUNK].into_boxed_slice());
        Buffer {
            data,
            start: 0,
            end: 0,
            loan: self.buffers.loan(),
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

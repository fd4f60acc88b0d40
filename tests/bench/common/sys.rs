//! The few Linux calls the bench tools need beyond std (epoll, listen,
//! setsockopt, and pipe2/fcntl/splice for the splice relay), declared by hand
//! so the tools depend on std alone.

#![allow(dead_code)]

use std::io;
use std::os::raw::{c_int, c_void};

pub const EPOLLIN: u32 = 0x001;
pub const EPOLLOUT: u32 = 0x004;
pub const EPOLLERR: u32 = 0x008;
pub const EPOLLHUP: u32 = 0x010;
pub const EPOLLRDHUP: u32 = 0x2000;

const EPOLL_CTL_ADD: c_int = 1;
const EPOLL_CTL_DEL: c_int = 2;
const EPOLL_CTL_MOD: c_int = 3;
const EPOLL_CLOEXEC: c_int = 0o2000000;

/// `struct epoll_event`; the kernel packs it on x86-64 only.
#[cfg_attr(target_arch = "x86_64", repr(C, packed))]
#[cfg_attr(not(target_arch = "x86_64"), repr(C))]
#[derive(Clone, Copy)]
pub struct Event {
    pub events: u32,
    pub data: u64,
}

impl Event {
    pub fn token(&self) -> u64 {
        self.data
    }
    pub fn flags(&self) -> u32 {
        self.events
    }
}

extern "C" {
    fn epoll_create1(flags: c_int) -> c_int;
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut Event) -> c_int;
    fn epoll_wait(epfd: c_int, events: *mut Event, maxevents: c_int, timeout: c_int) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: u32) -> c_int;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn splice(
        fd_in: c_int,
        off_in: *mut i64,
        fd_out: c_int,
        off_out: *mut i64,
        len: usize,
        flags: u32,
    ) -> isize;
}

fn check(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub struct Epoll {
    fd: c_int,
    events: Vec<Event>,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall without pointers.
        let fd = check(unsafe { epoll_create1(EPOLL_CLOEXEC) })?;
        Ok(Epoll {
            fd,
            events: vec![Event { events: 0, data: 0 }; 1024],
        })
    }

    fn ctl(&self, op: c_int, fd: c_int, events: u32, token: u64) -> io::Result<()> {
        let mut ev = Event {
            events,
            data: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        check(unsafe { epoll_ctl(self.fd, op, fd, &mut ev) }).map(|_| ())
    }

    pub fn add(&self, fd: c_int, events: u32, token: u64) -> io::Result<()> {
        self.ctl(EPOLL_CTL_ADD, fd, events, token)
    }

    pub fn modify(&self, fd: c_int, events: u32, token: u64) -> io::Result<()> {
        self.ctl(EPOLL_CTL_MOD, fd, events, token)
    }

    pub fn delete(&self, fd: c_int) -> io::Result<()> {
        self.ctl(EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ms` (-1: forever) and returns the ready events.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<&[Event]> {
        // SAFETY: the buffer holds `len` events and outlives the call.
        let n = unsafe {
            epoll_wait(
                self.fd,
                self.events.as_mut_ptr(),
                self.events.len() as c_int,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(&self.events[..0]);
            }
            return Err(e);
        }
        Ok(&self.events[..n as usize])
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { close(self.fd) };
    }
}

/// Calls listen(2) again on a listening socket to raise its backlog.
pub fn set_backlog(fd: c_int, backlog: c_int) -> io::Result<()> {
    // SAFETY: plain syscall without pointers.
    check(unsafe { listen(fd, backlog) }).map(|_| ())
}

/// Sets an int socket option.
pub fn set_int_opt(fd: c_int, level: c_int, name: c_int, value: c_int) -> io::Result<()> {
    // SAFETY: `value` lives for the call and its size is passed.
    check(unsafe {
        setsockopt(
            fd,
            level,
            name,
            &value as *const c_int as *const c_void,
            std::mem::size_of::<c_int>() as u32,
        )
    })
    .map(|_| ())
}

pub const SOL_SOCKET: c_int = 1;
pub const SO_SNDBUF: c_int = 7;
pub const SO_RCVBUF: c_int = 8;

pub const O_NONBLOCK: c_int = 0o4000;
pub const O_CLOEXEC: c_int = 0o2000000;
const F_SETPIPE_SZ: c_int = 1031;
const F_GETPIPE_SZ: c_int = 1032;
pub const SPLICE_F_MOVE: u32 = 1;
pub const SPLICE_F_NONBLOCK: u32 = 2;

/// A kernel pipe; both ends are closed on drop.
pub struct Pipe {
    pub r: c_int,
    pub w: c_int,
}

impl Pipe {
    /// pipe2(2) with the given flags (O_NONBLOCK, O_CLOEXEC).
    pub fn new(flags: c_int) -> io::Result<Pipe> {
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        check(unsafe { pipe2(fds.as_mut_ptr(), flags) })?;
        Ok(Pipe { r: fds[0], w: fds[1] })
    }

    /// Asks for a capacity of `bytes` (F_SETPIPE_SZ); returns the capacity
    /// the kernel granted (it rounds up to a power of two pages).
    pub fn set_size(&self, bytes: usize) -> io::Result<usize> {
        // SAFETY: plain fcntl on a descriptor we own, int argument.
        check(unsafe { fcntl(self.w, F_SETPIPE_SZ, bytes as c_int) }).map(|n| n as usize)
    }

    /// The current capacity (F_GETPIPE_SZ).
    pub fn size(&self) -> io::Result<usize> {
        // SAFETY: plain fcntl on a descriptor we own.
        check(unsafe { fcntl(self.w, F_GETPIPE_SZ) }).map(|n| n as usize)
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: we own both descriptors.
        unsafe {
            close(self.r);
            close(self.w);
        }
    }
}

/// splice(2) between two descriptors without offsets (one must be a pipe).
pub fn splice_fds(from: c_int, to: c_int, len: usize, flags: u32) -> io::Result<usize> {
    // SAFETY: null offsets: both ends use their own file position.
    let n = unsafe { splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

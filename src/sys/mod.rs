//! The thin layer over libc: every `unsafe` block of the crate lives here,
//! each with the reason it is sound. The wrappers take borrowed or owned
//! descriptors, so a closed or foreign descriptor number cannot reach them.

pub mod process;
pub mod random;
pub mod signal;
pub mod socket;
pub mod thread;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Runs a system call until it is not interrupted by a signal. EINTR says
/// nothing about readiness: turning it into `WouldBlock` would make the
/// caller forget readiness it still has and wait for an edge that never
/// comes. Each retry follows a delivered signal (and the loop's own signals
/// are blocked and read through a signalfd), so this does not spin.
fn retry(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let r = call();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The result of a call that returns 0 or -1 with errno.
fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn recv(fd: BorrowedFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes and `fd` is open
    // for as long as it is borrowed.
    retry(|| unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) })
}

pub fn send(fd: BorrowedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes and `fd` is open.
    retry(|| unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
}

/// Moves up to `len` bytes between descriptors, one of them a pipe, without
/// copying them through user space.
pub fn splice(from: BorrowedFd, to: BorrowedFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    let (from, to) = (from.as_raw_fd(), to.as_raw_fd());
    // SAFETY: open descriptors and null offsets; no memory is passed.
    retry(
        || unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, flags) } as isize,
    )
}

/// A non-blocking pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and nothing
    // else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets a pipe's capacity (rounded up to pages by the kernel); returns it.
pub fn set_pipe_size(pipe: BorrowedFd, bytes: usize) -> io::Result<usize> {
    let bytes = libc::c_int::try_from(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours.
    retry(|| unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) } as isize)
}

/// Makes reads and writes on `fd` return `WouldBlock` instead of waiting.
pub fn set_nonblocking(fd: BorrowedFd) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFL takes no argument and touches no memory of ours.
    let flags = retry(|| unsafe { libc::fcntl(fd, libc::F_GETFL) } as isize)? as libc::c_int;
    // SAFETY: F_SETFL takes an int of flags and touches no memory of ours.
    retry(|| unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } as isize).map(drop)
}

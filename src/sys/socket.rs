//! Socket options std and mio do not offer.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check;

/// The credentials of the process at the other end of a unix socket, as
/// they were when it connected (`SO_PEERCRED`).
pub fn peer_credentials(fd: BorrowedFd) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a valid, writable ucred and `len` holds its size,
    // so the kernel writes at most that many bytes into it.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::from_mut(&mut cred).cast(),
            &mut len,
        )
    })?;
    Ok(cred)
}

/// Bytes a TCP socket holds that its peer has not yet acknowledged
/// (`SIOCOUTQ`, which Linux spells `TIOCOUTQ` per architecture).
pub fn unsent_bytes(fd: BorrowedFd) -> io::Result<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int through the pointer, which points at
    // `queued`, a live and writable c_int.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, std::ptr::from_mut(&mut queued)) })?;
    Ok(usize::try_from(queued).unwrap_or(0))
}

/// listen(2) on a socket that already listens sets a new backlog.
pub fn listen(fd: BorrowedFd, backlog: libc::c_int) -> io::Result<()> {
    // SAFETY: listen takes a descriptor and an int; no memory is passed.
    check(unsafe { libc::listen(fd.as_raw_fd(), backlog) })
}

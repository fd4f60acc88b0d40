//! Other processes: pidfds that name one process for good, and the clock
//! unit of their start times.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Clock ticks per second (`_SC_CLK_TCK`), if the system says.
pub fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf only reads a system setting.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|&hz| hz > 0)
}

/// A pidfd for `pid` (Linux 5.3 or later): it keeps naming that process
/// even once its pid is reused.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::other("impossible pidfd"))?;
    // SAFETY: the descriptor was just created for us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `signal` (or 0 to check the process is not yet reaped) through a
/// pidfd, so it reaches that process and no later holder of its pid.
pub fn pidfd_send_signal(pidfd: BorrowedFd, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with an open pidfd, a signal number (or 0),
    // no siginfo (null) and no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

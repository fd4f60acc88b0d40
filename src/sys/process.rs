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

/// A child process started by [`spawn`]. Like std's `Child`, dropping it
/// neither kills nor reaps it.
pub struct Child {
    pid: libc::pid_t,
    exited: bool,
}

/// Starts `program` (looked up in `PATH` unless it holds a `/`) with
/// `args`, stdin and stderr on `/dev/null` and stdout a pipe whose reading
/// end is returned. As std's `Command` does with `posix_spawnp`: the child
/// inherits the signal mask and gets the default SIGPIPE action, and a
/// program that cannot be run is an error here. std's `Command` brought
/// its environment map and fork fallback along, 19 KB on MIPS.
pub fn spawn(program: &str, args: &[&str]) -> io::Result<(Child, OwnedFd)> {
    let nul = |_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte found in provided data");
    let argv: Vec<std::ffi::CString> = std::iter::once(program)
        .chain(args.iter().copied())
        .map(|a| std::ffi::CString::new(a).map_err(nul))
        .collect::<io::Result<_>>()?;
    let mut argv_ptrs: Vec<*mut libc::c_char> = argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv_ptrs.push(std::ptr::null_mut());
    let stdin = OwnedFd::from(std::fs::File::open("/dev/null")?);
    let stderr = OwnedFd::from(std::fs::OpenOptions::new().write(true).open("/dev/null")?);
    let mut ends = [0; 2];
    // SAFETY: pipe2 fills the two descriptors it creates, which are then
    // owned here alone.
    let (read_end, write_end) = unsafe {
        super::check(libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC))?;
        (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1]))
    };
    let mut pid: libc::pid_t = 0;
    // SAFETY: the attributes and file actions are initialised before use
    // and destroyed after; argv is a null-terminated array of pointers to
    // the CStrings above, which outlive the call, and environ is the
    // process's environment. The descriptors dup2'd stay open until the
    // call has returned.
    let r = unsafe {
        let mut actions = std::mem::zeroed::<libc::posix_spawn_file_actions_t>();
        let mut attr = std::mem::zeroed::<libc::posix_spawnattr_t>();
        let mut r = libc::posix_spawn_file_actions_init(&mut actions);
        if r == 0 {
            r = libc::posix_spawnattr_init(&mut attr);
            if r == 0 {
                let mut sigpipe = std::mem::zeroed::<libc::sigset_t>();
                libc::sigemptyset(&mut sigpipe);
                libc::sigaddset(&mut sigpipe, libc::SIGPIPE);
                for (fd, to) in [(&stdin, 0), (&write_end, 1), (&stderr, 2)] {
                    if r == 0 {
                        r = libc::posix_spawn_file_actions_adddup2(&mut actions, fd.as_raw_fd(), to);
                    }
                }
                if r == 0 {
                    r = libc::posix_spawnattr_setsigdefault(&mut attr, &sigpipe);
                }
                if r == 0 {
                    r = libc::posix_spawnattr_setflags(&mut attr, libc::POSIX_SPAWN_SETSIGDEF as _);
                }
                if r == 0 {
                    r = libc::posix_spawnp(
                        &mut pid,
                        argv[0].as_ptr(),
                        &actions,
                        &attr,
                        argv_ptrs.as_ptr(),
                        environ as *const _,
                    );
                }
                libc::posix_spawnattr_destroy(&mut attr);
            }
            libc::posix_spawn_file_actions_destroy(&mut actions);
        }
        r
    };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok((Child { pid, exited: false }, read_end))
}

extern "C" {
    static environ: *const *mut libc::c_char;
}

impl Child {
    /// Whether it has exited (and is now reaped), without waiting.
    pub fn try_wait(&mut self) -> io::Result<bool> {
        if !self.exited {
            let mut status = 0;
            // SAFETY: waitpid on our own child, with a status to fill.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            self.exited = r != 0;
        }
        Ok(self.exited)
    }

    /// SIGKILL, unless it has been reaped (its pid may be another's now).
    pub fn kill(&mut self) -> io::Result<()> {
        if self.exited {
            return Ok(());
        }
        // SAFETY: kill takes a pid and a signal; the pid is our unreaped
        // child's, so it names no other process.
        super::check(unsafe { libc::kill(self.pid, libc::SIGKILL) })
    }

    /// Waits until it has exited, and reaps it.
    pub fn wait(&mut self) -> io::Result<()> {
        while !self.exited {
            let mut status = 0;
            // SAFETY: waitpid on our own child, with a status to fill.
            if unsafe { libc::waitpid(self.pid, &mut status, 0) } < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
                continue;
            }
            self.exited = true;
        }
        Ok(())
    }
}

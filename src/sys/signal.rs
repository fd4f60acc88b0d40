//! SIGTERM, SIGINT and SIGHUP as readable events (signalfd), so the single
//! event-loop thread handles them between events rather than in a handler.

use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub enum Signal {
    Terminate,
    Reload,
}

pub struct Signals {
    fd: OwnedFd,
}

impl Signals {
    pub fn new() -> io::Result<Signals> {
        // SAFETY: sigset operations on a local, zero-initialised set; the
        // signals are blocked for this (only) thread so signalfd gets them.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            let mut set: libc::sigset_t = zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut set, s);
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Signals {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// The next pending signal, if any.
    pub fn next(&self) -> Option<Signal> {
        loop {
            let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
            let want = size_of::<libc::signalfd_siginfo>();
            // SAFETY: reading at most `want` bytes into a buffer of that size.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), want) };
            if n != want as isize {
                return None;
            }
            // SAFETY: the kernel filled the whole struct.
            let signo = unsafe { info.assume_init() }.ssi_signo as i32;
            match signo {
                libc::SIGTERM | libc::SIGINT => return Some(Signal::Terminate),
                libc::SIGHUP => return Some(Signal::Reload),
                _ => {}
            }
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

//! The sockets a connection holds: a client or upstream stream, and the
//! `Side` that tracks what edge-triggered readiness has promised about it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use mio::net::{TcpStream, UnixStream};
use mio::{event, Interest, Registry, Token};

use crate::sys::socket::peer_credentials;
use crate::sys::{recv, send};

pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Stream {
    /// The uid of the process at the other end of a unix socket, as it was
    /// when it connected (`SO_PEERCRED`); the kernel vouches for it.
    pub fn peer_uid(&self) -> io::Result<u32> {
        self.peer_credentials().map(|c| c.uid)
    }

    /// The pid of the process at the other end of a unix socket (the one
    /// that connected, or listened), as our pid namespace sees it: 0 when it
    /// runs in a namespace we cannot see into.
    pub fn peer_pid(&self) -> io::Result<libc::pid_t> {
        self.peer_credentials().map(|c| c.pid)
    }

    fn peer_credentials(&self) -> io::Result<libc::ucred> {
        peer_credentials(self.as_fd())
    }

    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
        }
    }
}

impl event::Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// One end of a connection with the readiness that edge-triggered events
/// reported and that no `WouldBlock` has taken back yet.
pub struct Side {
    pub stream: Stream,
    pub readable: bool,
    pub writable: bool,
    /// The peer shut down its sending side (or vanished).
    pub read_closed: bool,
    write_shut: bool,
}

impl Side {
    pub fn new(stream: Stream) -> Side {
        Side {
            stream,
            readable: false,
            writable: false,
            read_closed: false,
            write_shut: false,
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Takes in what an edge-triggered event reports; an error or hang-up
    /// counts as readiness, so the next call hears it.
    pub fn note(&mut self, ev: &event::Event) {
        self.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
        self.writable |= ev.is_writable() || ev.is_write_closed() || ev.is_error();
        self.read_closed |= ev.is_read_closed() || ev.is_error();
    }

    pub fn shutdown_write(&mut self) {
        if !self.write_shut {
            self.write_shut = true;
            self.stream.shutdown_write();
        }
    }

    /// Peeks at buffered input; `Ok(None)` when there is none right now.
    pub fn peek(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let r = recv(self.fd(), buf, libc::MSG_PEEK);
        would_block(&mut self.readable, r)
    }

    /// Reads into `buf`; `Ok(None)` when there is nothing right now.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let r = recv(self.fd(), buf, 0);
        would_block(&mut self.readable, r)
    }

    /// `read` for a reader that takes all there is: a short read emptied
    /// the socket, and the next byte brings a new edge, so readiness is
    /// dropped rather than asking again only to hear "would block".
    pub fn read_all_there_is(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let got = self.read(buf)?;
        if got.is_some_and(|n| n < buf.len()) && !self.read_closed {
            self.readable = false;
        }
        Ok(got)
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<Option<usize>> {
        let r = send(self.fd(), buf);
        would_block(&mut self.writable, r)
    }

    /// `write` of several pieces in one call (`writev`).
    pub fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<Option<usize>> {
        let r = match &self.stream {
            Stream::Tcp(s) => io::Write::write_vectored(&mut &*s, bufs),
            Stream::Unix(s) => io::Write::write_vectored(&mut &*s, bufs),
        };
        would_block(&mut self.writable, r)
    }

    /// Writes as much of `bytes` as the socket takes now; returns how much.
    /// The one loop that writes until the socket would block.
    pub fn send_ready(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut sent = 0;
        while sent < bytes.len() && self.writable {
            match self.write(&bytes[sent..])? {
                Some(n) => sent += n,
                None => break,
            }
        }
        Ok(sent)
    }

    /// Drops exactly `n` bytes that were peeked at before.
    pub fn consume(&mut self, scratch: &mut [u8], mut n: usize) -> io::Result<()> {
        while n > 0 {
            let want = n.min(scratch.len());
            match recv(self.fd(), &mut scratch[..want], 0) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(got) => n -= got,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Turns `WouldBlock` into `Ok(None)` and forgets the readiness it denies.
fn would_block(ready: &mut bool, r: io::Result<usize>) -> io::Result<Option<usize>> {
    match r {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            *ready = false;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

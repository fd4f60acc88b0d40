//! Moving bytes from one socket to another: a `Flow` carries one message
//! body, or one direction of a tunnel, from `src` to `dst`.
//!
//! Bytes go through a kernel pipe with `splice(2)` so they never enter user
//! space; a pooled 32 KiB buffer is the fallback when splice is off or the
//! kernel refuses it. Chunked bodies are relayed verbatim: only the framing
//! lines are peeked at (`MSG_PEEK`), so the data between them is spliced too.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use mio::net::{TcpStream, UnixStream};
use mio::{event, Interest, Registry, Token};

use crate::chunked::{ChunkError, ChunkedTracker};
use crate::pool::{Buffer, Pipe, Resources, CHUNK};

/// Bytes peeked at once to read chunk framing.
const FRAMING_PEEK: usize = 256;

pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

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
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` is a valid, writable ucred and `len` holds its size,
        // so the kernel writes at most that many bytes into it.
        let r = unsafe {
            libc::getsockopt(
                self.fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                std::ptr::from_mut(&mut cred).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(cred)
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

    pub fn fd(&self) -> RawFd {
        self.stream.fd()
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

    pub fn write(&mut self, buf: &[u8]) -> io::Result<Option<usize>> {
        let r = send(self.fd(), buf);
        would_block(&mut self.writable, r)
    }

    /// Drops exactly `n` bytes that were peeked at before.
    pub fn consume(&mut self, scratch: &mut [u8], mut n: usize) -> io::Result<()> {
        while n > 0 {
            let want = n.min(scratch.len());
            match recv(self.fd(), &mut scratch[..want], 0) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(got) => n -= got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
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

fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            // Retried by the caller's loop as "nothing happened".
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Err(e)
    } else {
        Ok(r as usize)
    }
}

fn recv(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    cvt(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
}

fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    cvt(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    // SAFETY: plain descriptors and null offsets; no memory is shared.
    cvt(unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, flags) })
}

/// Where a message ends.
#[derive(Debug, Clone)]
pub enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(ChunkedTracker),
    /// Everything until the source closes (tunnels, close-delimited replies).
    UntilEof,
}

#[derive(Debug)]
pub enum FlowError {
    /// The source closed before the message was complete.
    Truncated,
    Framing(ChunkError),
    Read(io::Error),
    Write(io::Error),
}

pub struct Flow {
    /// Written to `dst` before any body byte (heads, interim responses).
    head: Vec<u8>,
    head_written: usize,
    framing: Framing,
    /// Bytes at the front of `src` already known to belong to the message.
    owed: u64,
    pipe: Option<Pipe>,
    buffer: Option<Buffer>,
    /// Splice is off, or the kernel refused it for these sockets.
    copy_only: bool,
    src_eof: bool,
    pub spliced: u64,
    pub copied: u64,
}

impl Flow {
    pub fn new(framing: Framing, copy_only: bool) -> Flow {
        Flow {
            head: Vec::new(),
            head_written: 0,
            framing,
            owed: 0,
            pipe: None,
            buffer: None,
            copy_only,
            src_eof: false,
            spliced: 0,
            copied: 0,
        }
    }

    pub fn queue(&mut self, bytes: &[u8]) {
        if self.head_written == self.head.len() {
            self.head.clear();
            self.head_written = 0;
        }
        self.head.extend_from_slice(bytes);
    }

    pub fn set_framing(&mut self, framing: Framing) {
        self.framing = framing;
        self.owed = 0;
    }

    fn message_complete(&self) -> bool {
        self.owed == 0
            && match &self.framing {
                Framing::Length(n) => *n == 0,
                Framing::Chunked(t) => t.is_done(),
                Framing::UntilEof => self.src_eof,
            }
    }

    fn buffered(&self) -> usize {
        self.pipe.as_ref().map_or(0, |p| p.len) + self.buffer.as_ref().map_or(0, |b| b.end - b.start)
    }

    fn head_pending(&self) -> bool {
        self.head_written < self.head.len()
    }

    /// Everything of the message has reached `dst`.
    pub fn is_finished(&self) -> bool {
        !self.head_pending() && self.message_complete() && self.buffered() == 0
    }

    pub fn src_eof(&self) -> bool {
        self.src_eof
    }

    /// Moves as much as readiness allows. Returns whether anything moved.
    pub fn pump(&mut self, src: &mut Side, dst: &mut Side, res: &mut Resources) -> Result<bool, FlowError> {
        let mut any = false;
        loop {
            let mut progress = self.flush_head(dst)?;
            if self.head_pending() {
                return Ok(any || progress);
            }
            progress |= self.drain(dst, res)?;
            progress |= self.fill(src, res)?;
            if !progress {
                return Ok(any);
            }
            any = true;
        }
    }

    /// Returns pooled pipe and buffer; call when the flow is dropped.
    pub fn release(&mut self, res: &mut Resources) {
        if let Some(p) = self.pipe.take() {
            res.give_pipe(p);
        }
        if let Some(b) = self.buffer.take() {
            res.give_buffer(b);
        }
    }

    fn flush_head(&mut self, dst: &mut Side) -> Result<bool, FlowError> {
        let mut progress = false;
        while self.head_pending() && dst.writable {
            match dst
                .write(&self.head[self.head_written..])
                .map_err(FlowError::Write)?
            {
                Some(n) => {
                    self.head_written += n;
                    progress = true;
                }
                None => break,
            }
        }
        if !self.head_pending() && !self.head.is_empty() {
            self.head = Vec::new();
            self.head_written = 0;
        }
        Ok(progress)
    }

    fn drain(&mut self, dst: &mut Side, res: &mut Resources) -> Result<bool, FlowError> {
        if !dst.writable {
            return Ok(false);
        }
        if let Some(pipe) = self.pipe.as_mut().filter(|p| p.len > 0) {
            return match splice(pipe.read.as_raw_fd(), dst.fd(), pipe.len) {
                Ok(n) => {
                    pipe.len -= n;
                    Ok(n > 0)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    dst.writable = false;
                    Ok(false)
                }
                Err(e) => Err(FlowError::Write(e)),
            };
        }
        let Some(buf) = self.buffer.as_mut().filter(|b| !b.is_empty()) else {
            return Ok(false);
        };
        match dst
            .write(&buf.data[buf.start..buf.end])
            .map_err(FlowError::Write)?
        {
            Some(n) => {
                buf.start += n;
                if buf.is_empty() {
                    buf.start = 0;
                    buf.end = 0;
                    if let Some(b) = self.buffer.take() {
                        res.give_buffer(b);
                    }
                }
                Ok(n > 0)
            }
            None => Ok(false),
        }
    }

    fn fill(&mut self, src: &mut Side, res: &mut Resources) -> Result<bool, FlowError> {
        if !src.readable || self.message_complete() {
            return Ok(false);
        }
        if self.owed == 0 {
            self.learn_owed(src, &mut res.scratch)?;
            if self.owed == 0 {
                return Ok(self.src_eof);
            }
        }
        if self.copy_only || !res.splice_enabled {
            return self.fill_copy(src, res);
        }
        let pipe = match self.pipe.as_mut() {
            Some(p) => p,
            None => self.pipe.insert(res.take_pipe().map_err(FlowError::Read)?),
        };
        if pipe.len >= CHUNK {
            return Ok(false);
        }
        let want = self.owed.min((CHUNK - pipe.len) as u64) as usize;
        match splice(src.fd(), pipe.write.as_raw_fd(), want) {
            Ok(0) => self.source_closed(),
            Ok(n) => {
                pipe.len += n;
                self.took(n);
                self.spliced += n as u64;
                res.bytes.spliced += n as u64;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // With bytes in the pipe, EAGAIN may mean "pipe full" rather
                // than "socket empty": keep the readiness until it is drained.
                if pipe.len == 0 {
                    src.readable = false;
                }
                Ok(false)
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                log::debug!("splice refused ({e}); copying instead");
                self.copy_only = true;
                Ok(true)
            }
            Err(e) => Err(FlowError::Read(e)),
        }
    }

    fn fill_copy(&mut self, src: &mut Side, res: &mut Resources) -> Result<bool, FlowError> {
        if self.pipe.as_ref().is_some_and(|p| p.len > 0) {
            return Ok(false);
        }
        let buf = match self.buffer.as_mut() {
            Some(b) => b,
            None => self.buffer.insert(res.take_buffer()),
        };
        if buf.end == buf.data.len() {
            return Ok(false);
        }
        let want = self.owed.min((buf.data.len() - buf.end) as u64) as usize;
        match src
            .read(&mut buf.data[buf.end..buf.end + want])
            .map_err(FlowError::Read)?
        {
            Some(0) => self.source_closed(),
            Some(n) => {
                buf.end += n;
                self.took(n);
                self.copied += n as u64;
                res.bytes.copied += n as u64;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn took(&mut self, n: usize) {
        if self.owed != u64::MAX {
            self.owed -= n as u64;
        }
    }

    fn source_closed(&mut self) -> Result<bool, FlowError> {
        self.src_eof = true;
        self.owed = 0;
        match self.framing {
            Framing::UntilEof => Ok(true),
            _ => Err(FlowError::Truncated),
        }
    }

    /// Finds how many of the next bytes in `src` belong to the message.
    fn learn_owed(&mut self, src: &mut Side, scratch: &mut [u8]) -> Result<(), FlowError> {
        match &mut self.framing {
            Framing::Length(n) => {
                self.owed = *n;
                *n = 0;
            }
            Framing::UntilEof => self.owed = u64::MAX,
            Framing::Chunked(tracker) => {
                let data = tracker.pending_data();
                if data > 0 {
                    tracker.skip_data(data);
                    self.owed = data;
                    return Ok(());
                }
                let window = &mut scratch[..FRAMING_PEEK];
                match src.peek(window).map_err(FlowError::Read)? {
                    Some(0) => {
                        self.src_eof = true;
                        return Err(FlowError::Truncated);
                    }
                    Some(n) => {
                        let framing = tracker.advance(&window[..n]).map_err(FlowError::Framing)?;
                        self.owed = framing as u64;
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }
}

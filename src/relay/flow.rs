//! Moving bytes from one socket to another: a `Flow` carries one message
//! body, or one direction of a tunnel, from `src` to `dst`.
//!
//! Bytes go through a kernel pipe with `splice(2)` so they never enter user
//! space; a pooled 32 KiB buffer is the fallback when splice is off or the
//! kernel refuses it. Chunked bodies are relayed verbatim: only the framing
//! lines are peeked at (`MSG_PEEK`), so the data between them is spliced too.

use std::io;

use crate::http::chunked::{ChunkError, ChunkedTracker};
use crate::net::socket::Side;
use crate::relay::pool::{Buffer, Pipe, Resources, PIPE_SIZE};
use crate::sys::splice;

/// Bytes peeked at once to read chunk framing.
const FRAMING_PEEK: usize = 256;
/// Most bytes one splice moves out of a pipe. Sending a TCP socket larger
/// pieces cost more CPU per byte, not less, in the transfer benchmarks
/// (16 and 64 KiB were both worse than 32 KiB; 128 KiB worse still).
const SPLICE_OUT: usize = 32 * 1024;

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
            progress |= self.drain(dst)?;
            progress |= self.fill(src, res)?;
            if !progress {
                return Ok(any);
            }
            any = true;
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

    fn drain(&mut self, dst: &mut Side) -> Result<bool, FlowError> {
        if !dst.writable {
            return Ok(false);
        }
        if let Some(pipe) = self.pipe.as_mut().filter(|p| p.len > 0) {
            return match splice(pipe.read_end(), dst.fd(), pipe.len.min(SPLICE_OUT)) {
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
                    // Back to the pool: an idle flow holds no buffer.
                    self.buffer = None;
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
        // Refilled only once drained: each splice in then takes what the
        // whole pipe holds, and an EAGAIN into an empty pipe can only mean
        // the source is empty, so it is safe to forget the readiness.
        if pipe.len > 0 {
            return Ok(false);
        }
        let want = self.owed.min(PIPE_SIZE as u64) as usize;
        match splice(src.fd(), pipe.write_end(), want) {
            Ok(0) => self.source_closed(),
            Ok(n) => {
                pipe.len = n;
                self.took(n);
                self.spliced += n as u64;
                res.bytes.spliced += n as u64;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                src.readable = false;
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
            None => {
                if buf.is_empty() {
                    // Back to the pool: an idle flow holds no buffer.
                    self.buffer = None;
                }
                Ok(false)
            }
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


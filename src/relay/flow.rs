//! Moving bytes from one socket to another: a `Flow` carries one message
//! body, or one direction of a tunnel, from `src` to `dst`.
//!
//! Bytes go through a kernel pipe with `splice(2)` so they never enter user
//! space; a pooled 32 KiB buffer is the fallback when splice is off or the
//! kernel refuses it. Chunked bodies are relayed verbatim: only the framing
//! lines are peeked at (`MSG_PEEK`), so the data between them is spliced too.

use std::io;

use crate::http::chunked::{ChunkError, ChunkedTracker};
use crate::net::outbox::Outbox;
use crate::net::socket::Side;
use crate::relay::pool::{Buffer, ByteCounters, Pipe, Resources};
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

impl Framing {
    /// How many of `bytes`, the next ones from the message's source, belong
    /// to the message; the framing is advanced past them.
    pub fn take_prefix(&mut self, bytes: &[u8]) -> Result<usize, ChunkError> {
        Ok(match self {
            Framing::Length(n) => {
                let k = (*n).min(bytes.len() as u64);
                *n -= k;
                k as usize
            }
            Framing::Chunked(t) => t.advance(bytes)?,
            Framing::UntilEof => bytes.len(),
        })
    }
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
    head: Outbox,
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
            head: Outbox::default(),
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
        self.head.push(bytes);
    }

    /// `queue` for bytes in a vector of their own, taken without a copy.
    pub fn queue_owned(&mut self, bytes: Vec<u8>) {
        self.head.push_owned(bytes);
    }

    /// Counts `n` body bytes that went through user space: copied, or
    /// queued with a head because they arrived with one.
    pub fn count_copied(&mut self, n: usize, bytes: &mut ByteCounters) {
        self.copied += n as u64;
        bytes.copied += n as u64;
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
        !self.head.is_empty()
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
        self.head.flush(dst).map_err(FlowError::Write)
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
        let want = self.owed.min(pipe.capacity() as u64) as usize;
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
                self.count_copied(n, &mut res.bytes);
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    use std::os::unix::net::UnixStream as StdUnix;

    use super::*;
    use crate::net::socket::Stream;

    /// A non-blocking socket pair: our `Side` and the peer a test plays.
    fn pair() -> (Side, StdUnix) {
        let (ours, peer) = StdUnix::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        peer.set_nonblocking(true).unwrap();
        (
            Side::new(Stream::Unix(mio::net::UnixStream::from_std(ours))),
            peer,
        )
    }

    /// A flow between two socket pairs: bytes written to `writer` reach
    /// `src`; what the flow sends to `dst` is read from `reader`.
    struct Rig {
        flow: Flow,
        src: Side,
        writer: StdUnix,
        dst: Side,
        reader: StdUnix,
        res: Resources,
    }

    impl Rig {
        fn new(framing: Framing, splice: bool) -> Rig {
            let (src, writer) = pair();
            let (dst, reader) = pair();
            Rig {
                flow: Flow::new(framing, !splice),
                src,
                writer,
                dst,
                reader,
                res: Resources::new(1024, splice, 0),
            }
        }

        /// Feeds `input` into the source (closing it afterwards if `close`)
        /// and pumps, with every event a poll could report, until the flow
        /// finishes or fails. Returns the outcome and every byte `dst` got.
        fn run(&mut self, mut input: &[u8], close: bool) -> (Result<(), FlowError>, Vec<u8>) {
            let mut out = Vec::new();
            let mut closed = false;
            for _ in 0..100_000 {
                while !input.is_empty() {
                    match self.writer.write(input) {
                        Ok(n) => input = &input[n..],
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("feeding the source: {e}"),
                    }
                }
                if input.is_empty() && close && !closed {
                    self.writer.shutdown(Shutdown::Write).unwrap();
                    closed = true;
                }
                self.src.readable = true;
                self.dst.writable = true;
                let pumped = self.flow.pump(&mut self.src, &mut self.dst, &mut self.res);
                let got = read_all(&mut self.reader, &mut out);
                match pumped {
                    Err(e) => return (Err(e), out),
                    Ok(_) if self.flow.is_finished() => return (Ok(()), out),
                    Ok(moved) => assert!(moved || got > 0 || !input.is_empty(), "the flow stalled"),
                }
            }
            panic!("the flow never finished");
        }
    }

    /// Reads what is there without waiting; returns how much.
    fn read_all(from: &mut StdUnix, out: &mut Vec<u8>) -> usize {
        let mut buf = [0u8; 65536];
        let mut total = 0;
        loop {
            match from.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
                Err(e) => panic!("reading the destination: {e}"),
            }
        }
    }

    /// Bytes no shifted copy of which matches them.
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    fn chunked(data: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = data;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            out.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
            rest = tail;
        }
        out.extend_from_slice(b"0\r\nTrailer: yes\r\n\r\n");
        out
    }

    /// Which path moved the bytes: all spliced, or all copied.
    fn assert_path(flow: &Flow, splice: bool, n: usize) {
        let expected = if splice { (n as u64, 0) } else { (0, n as u64) };
        assert_eq!((flow.spliced, flow.copied), expected);
    }

    #[test]
    fn a_length_body_arrives_exactly_and_what_follows_stays_unread() {
        for splice in [true, false] {
            let body = pattern(300_000);
            let mut rig = Rig::new(Framing::Length(body.len() as u64), splice);
            rig.flow.queue(b"HEAD\r\n\r\n");
            let mut input = body.clone();
            input.extend_from_slice(b"GET /next");
            let (r, out) = rig.run(&input, false);
            r.unwrap();
            assert_eq!(out.len(), 8 + body.len());
            assert!(
                out[..8] == *b"HEAD\r\n\r\n" && out[8..] == body[..],
                "splice {splice}"
            );
            assert_path(&rig.flow, splice, body.len());
            let mut next = [0u8; 16];
            assert_eq!(rig.src.read(&mut next).unwrap(), Some(9));
            assert_eq!(&next[..9], b"GET /next");
        }
    }

    #[test]
    fn a_chunked_body_is_relayed_verbatim_and_ends_at_its_last_chunk() {
        for splice in [true, false] {
            let data = pattern(200_000);
            let body = chunked(&data, &[1, 70_000, 4096, 13, 33_000]);
            let mut rig = Rig::new(Framing::Chunked(ChunkedTracker::new()), splice);
            let mut input = body.clone();
            input.extend_from_slice(b"NEXT");
            let (r, out) = rig.run(&input, false);
            r.unwrap();
            assert!(
                out == body,
                "splice {splice}: {} bytes of {}",
                out.len(),
                body.len()
            );
            assert_path(&rig.flow, splice, body.len());
            let mut next = [0u8; 8];
            assert_eq!(rig.src.read(&mut next).unwrap(), Some(4));
        }
    }

    #[test]
    fn a_full_destination_holds_the_flow_and_keeps_the_source_readiness() {
        for splice in [true, false] {
            let body = pattern(4 << 20);
            let mut rig = Rig::new(Framing::Length(body.len() as u64), splice);
            let mut fed = 0;
            // Nobody reads the destination: the flow fills it, then its own
            // pipe or buffer, and stops.
            loop {
                fed += rig.writer.write(&body[fed..]).unwrap_or(0);
                rig.src.readable = true;
                rig.dst.writable = true;
                if !rig.flow.pump(&mut rig.src, &mut rig.dst, &mut rig.res).unwrap() {
                    break;
                }
            }
            assert!(!rig.dst.writable, "the destination never filled");
            assert!(rig.flow.buffered() > 0, "nothing waits in the pipe or buffer");
            // The source still has bytes, and its readiness must survive:
            // under edge-triggered polling no new event would come for them.
            assert!(rig.src.readable, "splice {splice}");
            let mut out = Vec::new();
            read_all(&mut rig.reader, &mut out);
            // Room again: only the destination's event arrives.
            rig.dst.writable = true;
            assert!(rig.flow.pump(&mut rig.src, &mut rig.dst, &mut rig.res).unwrap());
            let (r, rest) = rig.run(&body[fed..], false);
            r.unwrap();
            out.extend_from_slice(&rest);
            assert!(
                out == body,
                "splice {splice}: {} bytes of {}",
                out.len(),
                body.len()
            );
            assert_path(&rig.flow, splice, body.len());
        }
    }

    #[test]
    fn a_source_closing_early_truncates_the_message() {
        for splice in [true, false] {
            let mut rig = Rig::new(Framing::Length(100_000), splice);
            let (r, out) = rig.run(&pattern(60_000), true);
            assert!(matches!(r, Err(FlowError::Truncated)), "splice {splice}: {r:?}");
            assert!(rig.flow.src_eof());
            // What was still in the pipe or buffer is not sent on.
            assert!(pattern(60_000).starts_with(&out));

            let mut rig = Rig::new(Framing::Chunked(ChunkedTracker::new()), splice);
            let (r, _) = rig.run(b"10\r\n0123456789abcdef\r\n4\r\n01", true);
            assert!(matches!(r, Err(FlowError::Truncated)), "splice {splice}: {r:?}");

            let mut rig = Rig::new(Framing::Chunked(ChunkedTracker::new()), splice);
            let (r, out) = rig.run(b"10\r\n0123456789abcdef\r\n", true);
            assert!(matches!(r, Err(FlowError::Truncated)), "splice {splice}: {r:?}");
            assert!(b"10\r\n0123456789abcdef\r\n".starts_with(&out));
        }
    }

    #[test]
    fn a_source_closing_ends_a_message_that_lasts_until_then() {
        for splice in [true, false] {
            let body = pattern(150_000);
            let mut rig = Rig::new(Framing::UntilEof, splice);
            let (r, out) = rig.run(&body, true);
            r.unwrap();
            assert!(rig.flow.src_eof());
            assert!(out == body);
            assert_path(&rig.flow, splice, body.len());
        }
    }

    #[test]
    fn a_destination_closing_fails_the_write() {
        for splice in [true, false] {
            let mut rig = Rig::new(Framing::UntilEof, splice);
            let (dst, reader) = pair();
            rig.dst = dst;
            drop(reader);
            let (r, _) = rig.run(&pattern(100_000), false);
            match r {
                Err(FlowError::Write(e)) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EPIPE), "splice {splice}")
                }
                other => panic!("splice {splice}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_chunk_framing_is_a_framing_error() {
        for splice in [true, false] {
            let mut rig = Rig::new(Framing::Chunked(ChunkedTracker::new()), splice);
            let (r, out) = rig.run(b"4\r\nabcdXY", false);
            assert!(matches!(r, Err(FlowError::Framing(_))), "splice {splice}: {r:?}");
            assert!(b"4\r\nabcd".starts_with(&out));
        }
    }

    #[test]
    fn pipes_and_buffers_go_back_to_the_pool_with_the_flow() {
        let body = pattern(100_000);
        let mut rig = Rig::new(Framing::UntilEof, true);
        rig.reader.set_nonblocking(true).unwrap();
        rig.writer.write_all(&body[..50_000]).unwrap();
        rig.src.readable = true;
        rig.dst.writable = true;
        rig.flow.pump(&mut rig.src, &mut rig.dst, &mut rig.res).unwrap();
        assert_eq!(rig.res.pipes_in_use(), 1);
        drop(std::mem::replace(
            &mut rig.flow,
            Flow::new(Framing::UntilEof, true),
        ));
        assert_eq!(rig.res.pipes_in_use(), 0);
        let mut copy = Flow::new(Framing::UntilEof, true);
        let mut out = Vec::new();
        read_all(&mut rig.reader, &mut out);
        rig.writer.write_all(&body[50_000..]).unwrap();
        rig.src.readable = true;
        rig.dst.writable = true;
        copy.pump(&mut rig.src, &mut rig.dst, &mut rig.res).unwrap();
        read_all(&mut rig.reader, &mut out);
        // Everything went through, so the flow gave its buffer back at once.
        assert!(out == body);
        assert_eq!(rig.res.buffers_in_use(), 0);
        rig.writer.write_all(b"more").unwrap();
        // A full destination keeps the buffer held until the flow is dropped.
        rig.dst.writable = false;
        rig.src.readable = true;
        copy.pump(&mut rig.src, &mut rig.dst, &mut rig.res).unwrap();
        assert_eq!(rig.res.buffers_in_use(), 1);
        drop(copy);
        assert_eq!(rig.res.buffers_in_use(), 0);
    }
}

//! Chunked transfer-coding tracker (RFC 9112 §7.1).
//!
//! It never decodes or copies chunk data: it only follows the framing so the
//! relay knows how many bytes belong to the current message and can move them
//! verbatim (by `splice`) without buffering. It is strict on purpose: anything
//! a lenient peer might read differently is an error, so dockerd can never see
//! a message boundary in a different place than we do.

/// Longest chunk-size line we accept (size, extensions and CRLF).
pub const MAX_LINE: usize = 4096;
/// Most bytes we accept in the trailer section after the last chunk.
pub const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    BadSize,
    SizeOverflow,
    BadExtension,
    LineTooLong,
    MissingCrlf,
    BadTrailer,
    TrailersTooLarge,
}

impl ChunkError {
    pub fn message(self) -> &'static str {
        match self {
            ChunkError::BadSize => "invalid chunk size",
            ChunkError::SizeOverflow => "chunk size too large",
            ChunkError::BadExtension => "invalid chunk extension",
            ChunkError::LineTooLong => "chunk size line too long",
            ChunkError::MissingCrlf => "chunk data not followed by CRLF",
            ChunkError::BadTrailer => "invalid trailer section",
            ChunkError::TrailersTooLarge => "trailer section too large",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size; `digits` so far.
    Size {
        digits: u32,
    },
    /// Inside `;ext...` after the size.
    Extension,
    /// Saw CR ending the size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
    Done,
}

#[derive(Debug, Clone)]
pub struct ChunkedTracker {
    state: State,
    size: u64,
    line_len: usize,
    trailer_len: usize,
}

impl Default for ChunkedTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedTracker {
    pub fn new() -> Self {
        ChunkedTracker {
            state: State::Size { digits: 0 },
            size: 0,
            line_len: 0,
            trailer_len: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Chunk data bytes that follow the current position and need no look.
    pub fn pending_data(&self) -> u64 {
        if self.state == State::Data {
            self.size
        } else {
            0
        }
    }

    /// Account for `n` data bytes moved blindly; `n <= pending_data()`.
    pub fn skip_data(&mut self, n: u64) {
        let n = n.min(self.pending_data());
        self.size -= n;
        if self.state == State::Data && self.size == 0 {
            self.state = State::DataCr;
        }
    }

    /// Follows the framing through `input`, which starts at the current
    /// position. Returns how many bytes belong to the message; that is less
    /// than `input.len()` only when the message ends inside `input`.
    pub fn advance(&mut self, input: &[u8]) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                let take = self.size.min((input.len() - i) as u64);
                self.skip_data(take);
                i += take as usize;
                continue;
            }
            if self.state == State::Done {
                break;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok(i)
    }

    fn step(&mut self, byte: u8) -> Result<(), ChunkError> {
        match self.state {
            State::Size { digits } => {
                self.count_line()?;
                if let Some(v) = hex_value(byte) {
                    if self.size >> 60 != 0 {
                        return Err(ChunkError::SizeOverflow);
                    }
                    self.size = (self.size << 4) | u64::from(v);
                    self.state = State::Size { digits: digits + 1 };
                } else if digits == 0 {
                    return Err(ChunkError::BadSize);
                } else if byte == b';' {
                    self.state = State::Extension;
                } else if byte == b'\r' {
                    self.state = State::SizeLf;
                } else {
                    return Err(ChunkError::BadSize);
                }
            }
            State::Extension => {
                self.count_line()?;
                match byte {
                    b'\r' => self.state = State::SizeLf,
                    b'\t' | b' '..=b'~' => {}
                    _ => return Err(ChunkError::BadExtension),
                }
            }
            State::SizeLf => {
                if byte != b'\n' {
                    return Err(ChunkError::BadSize);
                }
                self.line_len = 0;
                self.state = if self.size == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                };
            }
            State::DataCr => {
                if byte != b'\r' {
                    return Err(ChunkError::MissingCrlf);
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if byte != b'\n' {
                    return Err(ChunkError::MissingCrlf);
                }
                self.size = 0;
                self.state = State::Size { digits: 0 };
            }
            State::TrailerStart => {
                self.count_trailer()?;
                match byte {
                    b'\r' => self.state = State::FinalLf,
                    b' ' | b'\t' | b'\n' | b':' => return Err(ChunkError::BadTrailer),
                    _ => self.state = State::TrailerLine,
                }
            }
            State::TrailerLine => {
                self.count_trailer()?;
                match byte {
                    b'\r' => self.state = State::TrailerLf,
                    b'\n' | 0 => return Err(ChunkError::BadTrailer),
                    _ => {}
                }
            }
            State::TrailerLf => {
                self.count_trailer()?;
                if byte != b'\n' {
                    return Err(ChunkError::BadTrailer);
                }
                self.state = State::TrailerStart;
            }
            State::FinalLf => {
                if byte != b'\n' {
                    return Err(ChunkError::BadTrailer);
                }
                self.state = State::Done;
            }
            // `advance` moves through data itself and stops at the end.
            State::Data | State::Done => {}
        }
        Ok(())
    }

    fn count_line(&mut self) -> Result<(), ChunkError> {
        self.line_len += 1;
        if self.line_len > MAX_LINE {
            return Err(ChunkError::LineTooLong);
        }
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS {
            return Err(ChunkError::TrailersTooLarge);
        }
        Ok(())
    }
}

/// The data of a complete chunked body (framing removed); trailers are
/// dropped. `raw` must hold exactly one message.
pub fn decode(raw: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let mut t = ChunkedTracker::new();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() && !t.is_done() {
        let data = (t.pending_data() as usize).min(raw.len() - i);
        if data > 0 {
            out.extend_from_slice(&raw[i..i + data]);
            t.skip_data(data as u64);
            i += data;
        } else {
            // One framing byte at a time, so data never goes by unseen.
            t.step(raw[i])?;
            i += 1;
        }
    }
    if t.is_done() && i == raw.len() {
        Ok(out)
    } else {
        Err(ChunkError::BadSize)
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Result<(usize, bool), ChunkError> {
        let mut t = ChunkedTracker::new();
        let n = t.advance(input)?;
        Ok((n, t.is_done()))
    }

    #[test]
    fn simple_message_ends_exactly() {
        let msg = b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1";
        assert_eq!(run(msg), Ok((15, true)));
    }

    #[test]
    fn extensions_and_trailers() {
        let msg = b"3;name=val\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(run(msg), Ok((msg.len(), true)));
    }

    #[test]
    fn same_end_for_every_split() {
        let msg = b"a\r\n0123456789\r\n1F\r\nabcdefghijklmnopqrstuvwxyz01234\r\n0\r\n\r\nrest";
        let end = msg.len() - 4;
        for split in 0..msg.len() {
            let mut t = ChunkedTracker::new();
            let a = t.advance(&msg[..split]).unwrap();
            assert_eq!(a, split.min(end));
            let b = t.advance(&msg[split..]).unwrap();
            assert_eq!(a + b, end, "split at {split}");
            assert!(t.is_done());
        }
    }

    #[test]
    fn decodes_whole_bodies() {
        assert_eq!(
            decode(b"3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n"),
            Ok(b"abcde".to_vec())
        );
        assert_eq!(decode(b"0\r\n\r\n"), Ok(Vec::new()));
        assert!(decode(b"3\r\nabc\r\n").is_err());
        assert!(decode(b"0\r\n\r\nextra").is_err());
    }

    #[test]
    fn data_can_be_skipped_blindly() {
        let mut t = ChunkedTracker::new();
        assert_eq!(t.advance(b"10\r\n"), Ok(4));
        assert_eq!(t.pending_data(), 16);
        t.skip_data(16);
        assert_eq!(t.pending_data(), 0);
        assert_eq!(t.advance(b"\r\n0\r\n\r\n"), Ok(7));
        assert!(t.is_done());
    }

    #[test]
    fn rejects_ambiguous_framing() {
        assert_eq!(run(b"zz\r\n"), Err(ChunkError::BadSize));
        assert_eq!(run(b"\r\n"), Err(ChunkError::BadSize));
        assert_eq!(run(b" 5\r\n"), Err(ChunkError::BadSize));
        assert_eq!(run(b"5 \r\n"), Err(ChunkError::BadSize));
        assert_eq!(run(b"0x5\r\n"), Err(ChunkError::BadSize));
        assert_eq!(run(b"-1\r\n"), Err(ChunkError::BadSize));
        assert_eq!(run(b"5\nhello"), Err(ChunkError::BadSize));
        assert_eq!(run(b"5\r\nhelloXX"), Err(ChunkError::MissingCrlf));
        assert_eq!(run(b"5\r\nhello\n0"), Err(ChunkError::MissingCrlf));
        assert_eq!(run(b"ffffffffffffffffff\r\n"), Err(ChunkError::SizeOverflow));
        assert_eq!(run(b"1;a\x01\r\n"), Err(ChunkError::BadExtension));
        assert_eq!(run(b"0\r\n\n"), Err(ChunkError::BadTrailer));
        assert_eq!(run(b"0\r\n x\r\n\r\n"), Err(ChunkError::BadTrailer));
    }

    #[test]
    fn leading_zeros_are_fine_but_bounded() {
        assert_eq!(
            run(b"0000000000000000005\r\nhello\r\n0\r\n\r\n").map(|r| r.1),
            Ok(true)
        );
        assert_eq!(run(b"ffffffffffffffff\r\n").map(|r| r.1), Ok(false));
        let long = vec![b'0'; MAX_LINE + 1];
        assert_eq!(run(&long), Err(ChunkError::LineTooLong));
    }

    #[test]
    fn trailers_are_bounded() {
        let mut msg = b"0\r\n".to_vec();
        msg.extend(std::iter::repeat_n(b'a', MAX_TRAILERS + 1));
        assert_eq!(run(&msg), Err(ChunkError::TrailersTooLarge));
    }
}

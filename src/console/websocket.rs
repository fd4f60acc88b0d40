//! WebSocket framing, server side (RFC 6455), for the browser console.
//!
//! The decoder works in place on the connection's fixed read buffer and
//! streams data payloads out piece by piece, so a message never has to fit in
//! memory: the router only ever holds one buffer per connection. Control
//! frames are small (≤125 bytes) and are handed out whole.
//!
//! It is strict: no extensions are negotiated, so anything RFC 6455 leaves
//! undefined is a protocol error and the connection is closed with the code
//! from [`WsError::close_code`]. Decisions the RFC leaves to us:
//!
//! * Non-minimal length encodings (e.g. 5 encoded with the 16-bit form) are
//!   rejected: §5.2 says the minimal number of bytes MUST be used, and a
//!   single accepted spelling per frame keeps us from disagreeing with any
//!   other parser about where a frame ends.
//! * Invalid UTF-8 in a text message is reported as soon as the offending
//!   byte arrives (the "fail fast" behaviour Autobahn checks), not at the end
//!   of the message.
//! * The message size limit is checked when a frame header arrives, before
//!   any of its payload, so an oversized message costs nothing to refuse.
//! * Once a Close frame has been decoded, everything after it is discarded
//!   (§5.5.1: no data frames may follow a Close).

use crate::crypto::base64;
use crate::crypto::sha1::Sha1;

/// Appended to the client's key to prove the server speaks WebSocket
/// (RFC 6455 §1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Largest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// A read buffer at least this big always lets [`Decoder::decode`] progress:
/// the largest control frame from a client is a 2-byte header, a 4-byte mask
/// and 125 bytes of payload, and a data frame header is at most 14 bytes.
pub const MIN_BUFFER: usize = 2 + 4 + MAX_CONTROL_PAYLOAD;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` header value, or `None`
/// if the key is not the base64 of 16 bytes (§4.2.1 item 5), which a server
/// must refuse.
pub fn accept_key(client_key: &[u8]) -> Option<String> {
    let key = trim_ows(client_key);
    match base64::decode(key) {
        Some(nonce) if nonce.len() == 16 => {}
        _ => return None,
    }
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID.as_bytes());
    Some(base64::encode(&h.finish()))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    /// `None` for the reserved opcodes 0x3-0x7 and 0xB-0xF.
    pub fn from_u8(b: u8) -> Option<Opcode> {
        match b {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// Why the connection must be failed (§7.1.7). Every variant maps to the
/// close code to send before closing the TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    Protocol(&'static str),
    InvalidUtf8,
    TooBig,
}

impl WsError {
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Protocol(_) => 1002,
            WsError::InvalidUtf8 => 1007,
            WsError::TooBig => 1009,
        }
    }

    /// Short enough to go in a close frame's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            WsError::Protocol(r) => r,
            WsError::InvalidUtf8 => "invalid UTF-8 in text message",
            WsError::TooBig => "message too big",
        }
    }
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason(), self.close_code())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A piece of a data message's payload (text or binary), already
    /// unmasked. `end` = this piece ends the whole message (FIN frame, last
    /// byte). Pieces are never empty except the one that ends a message
    /// whose last frame was empty.
    Data {
        text: bool,
        payload: &'a [u8],
        end: bool,
    },
    /// A complete control frame (payload ≤125 bytes, unmasked). The caller
    /// answers Ping with Pong and Close with Close; a Close payload has
    /// already been checked (see [`parse_close`]).
    Control { opcode: Opcode, payload: &'a [u8] },
    /// Not enough bytes to make progress. The consumed count may still be
    /// non-zero (headers of frames whose payload has not arrived yet): the
    /// caller drops that many bytes, keeps the rest and reads more.
    NeedMore,
}

/// Checks a Close frame's payload (§5.5.1, §7.4): empty, or a valid status
/// code followed by a UTF-8 reason. Returns the code and reason if present.
pub fn parse_close(payload: &[u8]) -> Result<Option<(u16, &str)>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::Protocol("close frame with a 1-byte payload")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_close_code(code) {
                return Err(WsError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some((code, reason)))
        }
    }
}

/// Codes a peer may send (§7.4.1, IANA registry as Autobahn checks it):
/// 1004-1006 and 1015 are reserved for reporting and never go on the wire,
/// 0-999 and the unassigned 1016-2999 are invalid, 3000-4999 are for
/// libraries and applications.
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Between frames: the next byte starts a header.
    Header,
    /// Inside a data frame's payload.
    Payload {
        remaining: u64,
        mask: [u8; 4],
        /// Index into `mask` of the next payload byte, since pieces can end
        /// anywhere.
        mask_off: usize,
        fin: bool,
    },
}

/// What a step produced, as positions rather than borrows, so the step can
/// mutate the buffer and the borrow handed to the caller is taken once.
enum Step {
    NeedMore,
    Data {
        text: bool,
        start: usize,
        end: usize,
        last: bool,
    },
    Control {
        opcode: Opcode,
        start: usize,
        end: usize,
    },
}

struct Header {
    fin: bool,
    opcode: Opcode,
    len: u64,
    mask: [u8; 4],
    size: usize,
}

/// Incremental decoder for frames sent by a client.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_message: u64,
    state: State,
    /// `Some(is_text)` while a fragmented data message is in progress.
    message: Option<bool>,
    /// Payload bytes of the current message announced so far.
    message_len: u64,
    utf8: Utf8Validator,
    closed: bool,
    /// Errors are sticky: after one, the stream position is meaningless.
    failed: Option<WsError>,
}

impl Decoder {
    /// Server side: client frames must be masked. Messages whose total
    /// payload exceeds `max_message` bytes fail with [`WsError::TooBig`].
    pub fn new(max_message: u64) -> Decoder {
        Decoder {
            max_message,
            state: State::Header,
            message: None,
            message_len: 0,
            utf8: Utf8Validator::default(),
            closed: false,
            failed: None,
        }
    }

    /// A Close frame has been decoded; everything after it is discarded.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Decodes from the front of `buf` (unmasking payload in place). Returns
    /// the number of bytes of `buf` consumed and what they were.
    pub fn decode<'a>(&mut self, buf: &'a mut [u8]) -> Result<(usize, Decoded<'a>), WsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let (used, step) = match self.step(buf) {
            Ok(r) => r,
            Err(e) => {
                self.failed = Some(e);
                return Err(e);
            }
        };
        let buf: &'a [u8] = buf;
        let slice = |start: usize, end: usize| -> &'a [u8] {
            debug_assert!(start <= end && end <= buf.len());
            buf.get(start..end).unwrap_or(&[])
        };
        let decoded = match step {
            Step::NeedMore => Decoded::NeedMore,
            Step::Data {
                text,
                start,
                end,
                last,
            } => Decoded::Data {
                text,
                payload: slice(start, end),
                end: last,
            },
            Step::Control { opcode, start, end } => Decoded::Control {
                opcode,
                payload: slice(start, end),
            },
        };
        Ok((used, decoded))
    }

    fn step(&mut self, buf: &mut [u8]) -> Result<(usize, Step), WsError> {
        if self.closed {
            return Ok((buf.len(), Step::NeedMore));
        }
        let mut pos = 0usize;
        loop {
            let rest: &mut [u8] = match buf.get_mut(pos..) {
                Some(r) => r,
                None => return Ok((pos, Step::NeedMore)),
            };
            match self.state {
                State::Header => {
                    let h = match self.parse_header(rest)? {
                        Some(h) => h,
                        None => return Ok((pos, Step::NeedMore)),
                    };
                    if h.opcode.is_control() {
                        // parse_header capped the length at 125.
                        let total = h.size + h.len as usize;
                        let payload = match rest.get_mut(h.size..total) {
                            Some(p) => p,
                            None => return Ok((pos, Step::NeedMore)),
                        };
                        unmask(payload, h.mask, 0);
                        if h.opcode == Opcode::Close {
                            parse_close(payload)?;
                            self.closed = true;
                        }
                        return Ok((
                            pos + total,
                            Step::Control {
                                opcode: h.opcode,
                                start: pos + h.size,
                                end: pos + total,
                            },
                        ));
                    }
                    if h.opcode != Opcode::Continuation {
                        self.message = Some(h.opcode == Opcode::Text);
                        self.message_len = 0;
                        self.utf8 = Utf8Validator::default();
                    }
                    // parse_header checked the sum against max_message.
                    self.message_len += h.len;
                    pos += h.size;
                    if h.len > 0 {
                        self.state = State::Payload {
                            remaining: h.len,
                            mask: h.mask,
                            mask_off: 0,
                            fin: h.fin,
                        };
                        continue;
                    }
                    if h.fin {
                        // Report the end even though the frame is empty.
                        let text = self.end_message()?;
                        return Ok((
                            pos,
                            Step::Data {
                                text,
                                start: pos,
                                end: pos,
                                last: true,
                            },
                        ));
                    }
                    // An empty non-final frame carries nothing worth a piece.
                }
                State::Payload {
                    remaining,
                    mask,
                    mask_off,
                    fin,
                } => {
                    let avail = remaining.min(rest.len() as u64) as usize;
                    if avail == 0 {
                        return Ok((pos, Step::NeedMore));
                    }
                    let piece = match rest.get_mut(..avail) {
                        Some(p) => p,
                        None => return Ok((pos, Step::NeedMore)),
                    };
                    unmask(piece, mask, mask_off);
                    let text = self.message.unwrap_or(false);
                    if text {
                        self.utf8.feed(piece)?;
                    }
                    let remaining = remaining - avail as u64;
                    let mut last = false;
                    if remaining == 0 {
                        self.state = State::Header;
                        if fin {
                            self.end_message()?;
                            last = true;
                        }
                    } else {
                        self.state = State::Payload {
                            remaining,
                            mask,
                            mask_off: (mask_off + avail) & 3,
                            fin,
                        };
                    }
                    return Ok((
                        pos + avail,
                        Step::Data {
                            text,
                            start: pos,
                            end: pos + avail,
                            last,
                        },
                    ));
                }
            }
        }
    }

    /// Closes the current message; returns whether it was text.
    fn end_message(&mut self) -> Result<bool, WsError> {
        let text = self.message.take().unwrap_or(false);
        if text {
            self.utf8.finish()?;
        }
        Ok(text)
    }

    /// Parses and checks a frame header at the front of `buf`; `None` if it
    /// is not all there yet. Checks run as soon as the bytes they need have
    /// arrived, so a bad frame fails without waiting for the rest of it.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<Header>, WsError> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = Opcode::from_u8(b0 & 0x0F).ok_or(WsError::Protocol("reserved opcode"))?;
        if opcode.is_control() {
            if !fin {
                return Err(WsError::Protocol("fragmented control frame"));
            }
        } else if opcode == Opcode::Continuation {
            if self.message.is_none() {
                return Err(WsError::Protocol("continuation frame without a message"));
            }
        } else if self.message.is_some() {
            return Err(WsError::Protocol("new message inside a fragmented message"));
        }

        let Some(&b1) = buf.get(1) else {
            return Ok(None);
        };
        if b1 & 0x80 == 0 {
            return Err(WsError::Protocol("unmasked client frame"));
        }
        let len7 = b1 & 0x7F;
        if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(WsError::Protocol("control frame payload too long"));
        }
        let (len, ext) = match len7 {
            126 => {
                let Some(&[a, b]) = buf.get(2..4).and_then(|s| <&[u8; 2]>::try_from(s).ok()) else {
                    return Ok(None);
                };
                let len = u64::from(u16::from_be_bytes([a, b]));
                if len < 126 {
                    return Err(WsError::Protocol("non-minimal frame length"));
                }
                (len, 2)
            }
            127 => {
                let Some(bytes) = buf.get(2..10).and_then(|s| <[u8; 8]>::try_from(s).ok()) else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(bytes);
                if len >> 63 != 0 {
                    return Err(WsError::Protocol("frame length with the high bit set"));
                }
                if len <= 0xFFFF {
                    return Err(WsError::Protocol("non-minimal frame length"));
                }
                (len, 8)
            }
            n => (u64::from(n), 0),
        };
        if !opcode.is_control() {
            let so_far = if opcode == Opcode::Continuation {
                self.message_len
            } else {
                0
            };
            match so_far.checked_add(len) {
                Some(total) if total <= self.max_message => {}
                _ => return Err(WsError::TooBig),
            }
        }
        let size = 2 + ext + 4;
        let Some(mask) = buf.get(2 + ext..size).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
            return Ok(None);
        };
        Ok(Some(Header {
            fin,
            opcode,
            len,
            mask,
            size,
        }))
    }
}

/// XORs `data` with the mask, `off` being the mask index of `data[0]`.
fn unmask(data: &mut [u8], mask: [u8; 4], off: usize) {
    // Rotating the key once and working in 16-byte blocks lets the compiler
    // vectorise the loop; payloads can be megabytes on a slow CPU.
    let mut key = [0u8; 16];
    for (i, k) in key.iter_mut().enumerate() {
        *k = mask[(off + i) & 3];
    }
    let mut blocks = data.chunks_exact_mut(16);
    for block in &mut blocks {
        for (b, k) in block.iter_mut().zip(key.iter()) {
            *b ^= k;
        }
    }
    for (b, k) in blocks.into_remainder().iter_mut().zip(key.iter()) {
        *b ^= k;
    }
}

/// UTF-8 checker that can stop and resume anywhere, even inside a code
/// point, since text arrives in arbitrary pieces.
#[derive(Debug, Clone, Copy, Default)]
struct Utf8Validator {
    /// Continuation bytes still expected for the current code point.
    need: u8,
    /// Allowed range of the next continuation byte. Narrower than 80..BF
    /// right after some lead bytes, which is what rules out overlong forms,
    /// surrogates and code points above U+10FFFF (Unicode table 3-7).
    lo: u8,
    hi: u8,
}

impl Utf8Validator {
    fn feed(&mut self, mut s: &[u8]) -> Result<(), WsError> {
        while self.need > 0 {
            let Some((&b, rest)) = s.split_first() else {
                return Ok(());
            };
            self.byte(b)?;
            s = rest;
        }
        // The bulk goes through the standard library's fast validator; only
        // a code point cut off at the end of the piece is tracked here.
        match std::str::from_utf8(s) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(WsError::InvalidUtf8),
            Err(e) => {
                for &b in s.get(e.valid_up_to()..).unwrap_or(&[]) {
                    self.byte(b)?;
                }
                Ok(())
            }
        }
    }

    fn byte(&mut self, b: u8) -> Result<(), WsError> {
        if self.need == 0 {
            let (need, lo, hi) = match b {
                0x00..=0x7F => return Ok(()),
                0xC2..=0xDF => (1, 0x80, 0xBF),
                0xE0 => (2, 0xA0, 0xBF),
                0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
                0xED => (2, 0x80, 0x9F),
                0xF0 => (3, 0x90, 0xBF),
                0xF1..=0xF3 => (3, 0x80, 0xBF),
                0xF4 => (3, 0x80, 0x8F),
                _ => return Err(WsError::InvalidUtf8),
            };
            *self = Utf8Validator { need, lo, hi };
            return Ok(());
        }
        if b < self.lo || b > self.hi {
            return Err(WsError::InvalidUtf8);
        }
        self.need -= 1;
        self.lo = 0x80;
        self.hi = 0xBF;
        Ok(())
    }

    fn finish(&self) -> Result<(), WsError> {
        if self.need == 0 {
            Ok(())
        } else {
            Err(WsError::InvalidUtf8)
        }
    }
}

/// Writes an unmasked (server→client) frame header with the minimal length
/// encoding; returns its size. `len` must be below 2^63 (§5.2).
pub fn encode_header(fin: bool, opcode: Opcode, len: u64, out: &mut [u8; 10]) -> usize {
    debug_assert!(len >> 63 == 0);
    out[0] = (if fin { 0x80 } else { 0 }) | opcode.as_u8();
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= 0xFFFF {
        out[1] = 126;
        let [a, b] = (len as u16).to_be_bytes();
        out[2] = a;
        out[3] = b;
        4
    } else {
        out[1] = 127;
        for (dst, src) in out[2..].iter_mut().zip(len.to_be_bytes()) {
            *dst = src;
        }
        10
    }
}

/// Payload of a Close frame. The reason is cut at a character boundary so
/// the whole payload fits a control frame.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = Vec::with_capacity(2 + cut);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes().get(..cut).unwrap_or(&[]));
    out
}

/// A complete frame as a client would send it (masked when `mask` is
/// given); for tests and fuzzing.
pub fn encode_frame(fin: bool, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut head = [0u8; 10];
    let n = encode_header(fin, opcode, payload.len() as u64, &mut head);
    let mut out = Vec::with_capacity(n + 4 + payload.len());
    out.extend_from_slice(&head[..n]);
    match mask {
        Some(m) => {
            if let Some(b1) = out.get_mut(1) {
                *b1 |= 0x80;
            }
            out.extend_from_slice(&m);
            let start = out.len();
            out.extend_from_slice(payload);
            if let Some(p) = out.get_mut(start..) {
                unmask(p, m, 0);
            }
        }
        None => out.extend_from_slice(payload),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Option<[u8; 4]> = Some([0x37, 0xFA, 0x21, 0x3D]);
    const BIG: u64 = 1 << 30;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Msg(bool, Vec<u8>),
        Ctl(Opcode, Vec<u8>),
    }

    /// Plays the caller: a buffer that keeps unconsumed bytes, fed `chunks`
    /// one at a time. Checks the piece invariants on the way.
    fn run_chunks(dec: &mut Decoder, chunks: &[&[u8]]) -> (Vec<Ev>, Option<WsError>) {
        let mut pending: Vec<u8> = Vec::new();
        let mut events = Vec::new();
        let mut cur: Option<(bool, Vec<u8>)> = None;
        for chunk in chunks {
            pending.extend_from_slice(chunk);
            loop {
                let before = pending.len();
                let (n, more) = match dec.decode(&mut pending) {
                    Err(e) => return (events, Some(e)),
                    Ok((n, d)) => {
                        let more = match d {
                            Decoded::NeedMore => false,
                            Decoded::Data { text, payload, end } => {
                                assert!(!payload.is_empty() || end, "empty non-final piece");
                                let m = cur.get_or_insert_with(|| (text, Vec::new()));
                                assert_eq!(m.0, text, "text flag changed inside a message");
                                m.1.extend_from_slice(payload);
                                if end {
                                    let (t, data) = cur.take().unwrap();
                                    events.push(Ev::Msg(t, data));
                                }
                                true
                            }
                            Decoded::Control { opcode, payload } => {
                                assert!(payload.len() <= 125);
                                events.push(Ev::Ctl(opcode, payload.to_vec()));
                                true
                            }
                        };
                        (n, more)
                    }
                };
                assert!(n <= before);
                pending.drain(..n);
                if !more {
                    break;
                }
                assert!(n > 0, "progress reported without consuming");
            }
        }
        (events, None)
    }

    fn run(dec: &mut Decoder, bytes: &[u8]) -> (Vec<Ev>, Option<WsError>) {
        run_chunks(dec, &[bytes])
    }

    fn run_bytewise(dec: &mut Decoder, bytes: &[u8]) -> (Vec<Ev>, Option<WsError>) {
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        run_chunks(dec, &chunks)
    }

    fn decode_all(bytes: &[u8]) -> (Vec<Ev>, Option<WsError>) {
        run(&mut Decoder::new(BIG), bytes)
    }

    fn frame(fin: bool, op: Opcode, payload: &[u8]) -> Vec<u8> {
        encode_frame(fin, op, payload, M)
    }

    fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
        frames.concat()
    }

    fn text(s: &[u8]) -> Ev {
        Ev::Msg(true, s.to_vec())
    }

    fn bin(s: &[u8]) -> Ev {
        Ev::Msg(false, s.to_vec())
    }

    fn expect_err(bytes: &[u8], err: WsError) {
        let (_, e) = decode_all(bytes);
        assert_eq!(e, Some(err));
        // Feeding byte by byte must fail the same way.
        let (_, e) = run_bytewise(&mut Decoder::new(BIG), bytes);
        assert_eq!(e, Some(err));
    }

    fn proto(reason: &'static str) -> WsError {
        WsError::Protocol(reason)
    }

    /// Raw header bytes with a chosen length field, masked with `M`.
    fn raw_header(b0: u8, len_field: &[u8]) -> Vec<u8> {
        let mut v = vec![b0];
        let mut l = len_field.to_vec();
        l[0] |= 0x80;
        v.extend_from_slice(&l);
        v.extend_from_slice(&M.unwrap());
        v
    }

    // -- handshake -------------------------------------------------------

    #[test]
    fn accept_key_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn accept_key_trims_ows() {
        assert_eq!(
            accept_key(b" \tdGhlIHNhbXBsZSBub25jZQ==\t ").as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn accept_key_rejects_bad_keys() {
        for k in [
            &b""[..],
            b"   ",
            b"dGhlIHNhbXBsZSBub25jZQ",       // unpadded
            b"dGhlIHNhbXBsZSBub25jZQ==x",    // trailing junk
            b"dGhlIHNhbXBsZSBub25j",         // 15 bytes
            b"dGhlIHNhbXBsZSBub25jZTE=",     // 17 bytes
            b"dGhlIHNhbXBs ZSBub25jZQ==",    // inner space
            b"dGhlIHNhbXBsZSBub25jZR==",     // non-canonical bits
            b"dGhlIHNhbXBsZSBub25jZQ==\r\n", // CRLF is not OWS
        ] {
            assert_eq!(accept_key(k), None, "{:?}", String::from_utf8_lossy(k));
        }
        // Any 16 bytes will do, not only the RFC's example.
        assert!(accept_key(base64::encode(&[0xFF; 16]).as_bytes()).is_some());
    }

    // -- opcodes and errors --------------------------------------------------

    #[test]
    fn opcode_values() {
        for b in 0..=255u8 {
            match Opcode::from_u8(b) {
                Some(op) => {
                    assert_eq!(op.as_u8(), b);
                    assert_eq!(op.is_control(), b >= 8);
                }
                None => assert!(matches!(b, 3..=7 | 0xB..=0xFF)),
            }
        }
        assert!(!Opcode::Continuation.is_control());
        assert!(!Opcode::Text.is_control());
        assert!(!Opcode::Binary.is_control());
        assert!(Opcode::Close.is_control());
        assert!(Opcode::Ping.is_control());
        assert!(Opcode::Pong.is_control());
    }

    #[test]
    fn error_codes_and_reasons() {
        assert_eq!(proto("x").close_code(), 1002);
        assert_eq!(proto("x").reason(), "x");
        assert_eq!(WsError::InvalidUtf8.close_code(), 1007);
        assert_eq!(WsError::TooBig.close_code(), 1009);
        for e in [proto("reserved bits set"), WsError::InvalidUtf8, WsError::TooBig] {
            assert!(e.reason().len() <= 123);
            assert!(!e.to_string().is_empty());
        }
    }

    // -- basic frames ----------------------------------------------------------

    #[test]
    fn rfc_masked_hello() {
        let bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        assert_eq!(decode_all(&bytes), (vec![text(b"Hello")], None));
        assert_eq!(frame(true, Opcode::Text, b"Hello"), bytes);
    }

    #[test]
    fn rfc_masked_pong() {
        let bytes = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        assert_eq!(
            decode_all(&bytes),
            (vec![Ev::Ctl(Opcode::Pong, b"Hello".to_vec())], None)
        );
    }

    #[test]
    fn unmasked_client_frames_rejected() {
        // The RFC's own unmasked examples: fine from a server, not from us.
        expect_err(
            &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            proto("unmasked client frame"),
        );
        expect_err(
            &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            proto("unmasked client frame"),
        );
        expect_err(
            &encode_frame(true, Opcode::Binary, &[], None),
            proto("unmasked client frame"),
        );
    }

    #[test]
    fn binary_is_not_utf8_checked() {
        let payload = [0xFF, 0xFE, 0xC0, 0x80, 0xED, 0xA0, 0x80];
        assert_eq!(
            decode_all(&frame(true, Opcode::Binary, &payload)),
            (vec![bin(&payload)], None)
        );
    }

    #[test]
    fn empty_messages_report_end() {
        let (ev, e) = decode_all(&cat(&[
            frame(true, Opcode::Text, b""),
            frame(true, Opcode::Binary, b""),
        ]));
        assert_eq!(e, None);
        assert_eq!(ev, vec![text(b""), bin(b"")]);
        let mut buf = frame(true, Opcode::Text, b"");
        let mut d = Decoder::new(BIG);
        assert_eq!(
            d.decode(&mut buf),
            Ok((
                6,
                Decoded::Data {
                    text: true,
                    payload: &[],
                    end: true
                }
            ))
        );
    }

    #[test]
    fn empty_final_continuation_reports_end() {
        let bytes = cat(&[
            frame(false, Opcode::Text, b"ab"),
            frame(true, Opcode::Continuation, b""),
        ]);
        let mut d = Decoder::new(BIG);
        let mut buf = bytes.clone();
        assert_eq!(
            d.decode(&mut buf),
            Ok((
                8,
                Decoded::Data {
                    text: true,
                    payload: b"ab",
                    end: false
                }
            ))
        );
        let mut rest = buf[8..].to_vec();
        assert_eq!(
            d.decode(&mut rest),
            Ok((
                6,
                Decoded::Data {
                    text: true,
                    payload: &[],
                    end: true
                }
            ))
        );
    }

    #[test]
    fn empty_non_final_frames_are_skipped() {
        let bytes = cat(&[
            frame(false, Opcode::Binary, b""),
            frame(false, Opcode::Continuation, b""),
            frame(false, Opcode::Continuation, b"x"),
            frame(true, Opcode::Continuation, b""),
        ]);
        let mut d = Decoder::new(BIG);
        let mut buf = bytes.clone();
        let (n, dec) = d.decode(&mut buf).unwrap();
        assert_eq!(n, 19);
        assert_eq!(
            dec,
            Decoded::Data {
                text: false,
                payload: b"x",
                end: false
            }
        );
        assert_eq!(decode_all(&bytes), (vec![bin(b"x")], None));
    }

    // -- lengths -------------------------------------------------------------

    #[test]
    fn every_length_encoding_roundtrips() {
        for len in [
            0usize, 1, 2, 3, 4, 5, 124, 125, 126, 127, 128, 1000, 65534, 65535, 65536, 65537, 100_000,
        ] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for op in [Opcode::Binary, Opcode::Text] {
                let p = if op == Opcode::Text {
                    payload.iter().map(|b| b & 0x7F).collect()
                } else {
                    payload.clone()
                };
                let f = frame(true, op, &p);
                let hdr = f.len() - len;
                let expect_hdr = match len {
                    0..=125 => 6,
                    126..=65535 => 8,
                    _ => 14,
                };
                assert_eq!(hdr, expect_hdr, "len {len}");
                assert_eq!(
                    decode_all(&f),
                    (vec![Ev::Msg(op == Opcode::Text, p)], None),
                    "len {len}"
                );
            }
        }
    }

    #[test]
    fn header_encoding_bytes() {
        let mut out = [0u8; 10];
        assert_eq!(encode_header(true, Opcode::Text, 0, &mut out), 2);
        assert_eq!(&out[..2], &[0x81, 0]);
        assert_eq!(encode_header(false, Opcode::Binary, 125, &mut out), 2);
        assert_eq!(&out[..2], &[0x02, 125]);
        assert_eq!(encode_header(true, Opcode::Binary, 126, &mut out), 4);
        assert_eq!(&out[..4], &[0x82, 126, 0, 126]);
        assert_eq!(encode_header(true, Opcode::Continuation, 65535, &mut out), 4);
        assert_eq!(&out[..4], &[0x80, 126, 0xFF, 0xFF]);
        assert_eq!(encode_header(true, Opcode::Close, 65536, &mut out), 10);
        assert_eq!(out, [0x88, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(encode_header(false, Opcode::Text, (1 << 63) - 1, &mut out), 10);
        assert_eq!(out, [0x01, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn non_minimal_16_bit_length_rejected() {
        let mut f = raw_header(0x82, &[126, 0, 125]);
        f.extend_from_slice(&[0; 125]);
        expect_err(&f, proto("non-minimal frame length"));
        expect_err(&raw_header(0x82, &[126, 0, 0]), proto("non-minimal frame length"));
        // 126 itself is the smallest legal 16-bit length.
        let mut ok = raw_header(0x82, &[126, 0, 126]);
        ok.extend_from_slice(&[0; 126]);
        assert_eq!(decode_all(&ok).1, None);
    }

    #[test]
    fn non_minimal_64_bit_length_rejected() {
        expect_err(
            &raw_header(0x82, &[127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            proto("non-minimal frame length"),
        );
        expect_err(
            &raw_header(0x82, &[127, 0, 0, 0, 0, 0, 0, 0, 5]),
            proto("non-minimal frame length"),
        );
        let mut ok = raw_header(0x82, &[127, 0, 0, 0, 0, 0, 1, 0, 0]);
        ok.extend_from_slice(&[0; 65536]);
        assert_eq!(
            decode_all(&ok),
            (vec![bin(&[0x37, 0xFA, 0x21, 0x3D].repeat(16384))], None)
        );
    }

    #[test]
    fn length_with_high_bit_rejected() {
        expect_err(
            &raw_header(0x82, &[127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            proto("frame length with the high bit set"),
        );
        expect_err(
            &raw_header(0x82, &[127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            proto("frame length with the high bit set"),
        );
    }

    #[test]
    fn need_more_on_every_partial_header() {
        for len in [5usize, 300, 70_000] {
            let f = frame(true, Opcode::Binary, &vec![1; len]);
            let hdr = f.len() - len;
            for cut in 0..hdr {
                let mut buf = f[..cut].to_vec();
                let mut d = Decoder::new(BIG);
                assert_eq!(
                    d.decode(&mut buf),
                    Ok((0, Decoded::NeedMore)),
                    "len {len} cut {cut}"
                );
                assert_eq!(buf, &f[..cut], "bytes changed before the header was complete");
            }
            // With the header complete but no payload, the header is consumed.
            let mut buf = f[..hdr].to_vec();
            let mut d = Decoder::new(BIG);
            assert_eq!(d.decode(&mut buf), Ok((hdr, Decoded::NeedMore)));
        }
    }

    #[test]
    fn incomplete_control_frame_waits_whole() {
        let f = frame(true, Opcode::Ping, b"0123456789");
        for cut in 0..f.len() {
            let mut buf = f[..cut].to_vec();
            let mut d = Decoder::new(BIG);
            assert_eq!(d.decode(&mut buf), Ok((0, Decoded::NeedMore)), "cut {cut}");
        }
    }

    #[test]
    fn payload_is_streamed_before_frame_completes() {
        let f = frame(true, Opcode::Text, b"hello world");
        let mut d = Decoder::new(BIG);
        let mut buf = f[..9].to_vec();
        assert_eq!(
            d.decode(&mut buf),
            Ok((
                9,
                Decoded::Data {
                    text: true,
                    payload: b"hel",
                    end: false
                }
            ))
        );
        let mut buf = f[9..14].to_vec();
        assert_eq!(
            d.decode(&mut buf),
            Ok((
                5,
                Decoded::Data {
                    text: true,
                    payload: b"lo wo",
                    end: false
                }
            ))
        );
        let mut buf = f[14..].to_vec();
        assert_eq!(
            d.decode(&mut buf),
            Ok((
                3,
                Decoded::Data {
                    text: true,
                    payload: b"rld",
                    end: true
                }
            ))
        );
    }

    #[test]
    fn mask_offset_carries_across_pieces() {
        let payload: Vec<u8> = (0..=255u8).collect();
        let f = frame(true, Opcode::Binary, &payload);
        for step in 1..=9 {
            let chunks: Vec<&[u8]> = f.chunks(step).collect();
            assert_eq!(
                run_chunks(&mut Decoder::new(BIG), &chunks),
                (vec![bin(&payload)], None),
                "step {step}"
            );
        }
    }

    // -- control frames and fragmentation ---------------------------------

    #[test]
    fn control_frames_up_to_125_bytes() {
        for op in [Opcode::Ping, Opcode::Pong] {
            for len in [0, 1, 124, 125] {
                let p = vec![0x5A; len];
                assert_eq!(decode_all(&frame(true, op, &p)), (vec![Ev::Ctl(op, p)], None));
            }
        }
    }

    #[test]
    fn oversized_control_frames_rejected() {
        for op in [Opcode::Ping, Opcode::Pong, Opcode::Close] {
            // 126 must use the 16-bit form, which control frames may not have.
            expect_err(
                &frame(true, op, &[0; 126]),
                proto("control frame payload too long"),
            );
            expect_err(
                &frame(true, op, &[0; 70_000]),
                proto("control frame payload too long"),
            );
        }
    }

    #[test]
    fn fragmented_control_frames_rejected() {
        for op in [Opcode::Ping, Opcode::Pong, Opcode::Close] {
            expect_err(&frame(false, op, b"x"), proto("fragmented control frame"));
        }
        let bytes = cat(&[frame(false, Opcode::Text, b"a"), frame(false, Opcode::Ping, b"")]);
        expect_err(&bytes, proto("fragmented control frame"));
    }

    #[test]
    fn fragmentation_with_interleaved_control_frames() {
        let bytes = cat(&[
            frame(false, Opcode::Text, b"frag"),
            frame(true, Opcode::Ping, b"p1"),
            frame(false, Opcode::Continuation, b"men"),
            frame(true, Opcode::Pong, b""),
            frame(true, Opcode::Ping, b"p2"),
            frame(true, Opcode::Continuation, b"ted"),
            frame(true, Opcode::Binary, b"\x00\x01"),
        ]);
        let expected = vec![
            Ev::Ctl(Opcode::Ping, b"p1".to_vec()),
            Ev::Ctl(Opcode::Pong, vec![]),
            Ev::Ctl(Opcode::Ping, b"p2".to_vec()),
            text(b"fragmented"),
            bin(b"\x00\x01"),
        ];
        assert_eq!(decode_all(&bytes), (expected.clone(), None));
        assert_eq!(run_bytewise(&mut Decoder::new(BIG), &bytes), (expected, None));
    }

    #[test]
    fn text_flag_reported_on_continuation_pieces() {
        let bytes = cat(&[
            frame(false, Opcode::Text, b"a"),
            frame(true, Opcode::Continuation, b"b"),
        ]);
        let mut d = Decoder::new(BIG);
        let mut buf = bytes[7..].to_vec();
        let mut first = bytes[..7].to_vec();
        assert!(matches!(
            d.decode(&mut first),
            Ok((7, Decoded::Data { text: true, .. }))
        ));
        assert_eq!(
            d.decode(&mut buf),
            Ok((
                7,
                Decoded::Data {
                    text: true,
                    payload: b"b",
                    end: true
                }
            ))
        );
    }

    #[test]
    fn continuation_without_message_rejected() {
        expect_err(
            &frame(true, Opcode::Continuation, b"x"),
            proto("continuation frame without a message"),
        );
        expect_err(
            &frame(false, Opcode::Continuation, b"x"),
            proto("continuation frame without a message"),
        );
        // ... also right after a message has ended.
        let bytes = cat(&[
            frame(true, Opcode::Text, b"a"),
            frame(true, Opcode::Continuation, b"b"),
        ]);
        let (ev, e) = decode_all(&bytes);
        assert_eq!(ev, vec![text(b"a")]);
        assert_eq!(e, Some(proto("continuation frame without a message")));
    }

    #[test]
    fn new_message_inside_fragmented_message_rejected() {
        for op in [Opcode::Text, Opcode::Binary] {
            for first in [Opcode::Text, Opcode::Binary] {
                let bytes = cat(&[frame(false, first, b"a"), frame(true, op, b"b")]);
                expect_err(&bytes, proto("new message inside a fragmented message"));
            }
        }
    }

    #[test]
    fn reserved_opcodes_rejected() {
        for op in (3..=7u8).chain(0xB..=0xF) {
            expect_err(&raw_header(0x80 | op, &[0]), proto("reserved opcode"));
            expect_err(&raw_header(op, &[0]), proto("reserved opcode"));
            // Fails on the very first byte, without waiting for the rest.
            let mut d = Decoder::new(BIG);
            assert_eq!(d.decode(&mut [0x80 | op]), Err(proto("reserved opcode")));
        }
    }

    #[test]
    fn reserved_bits_rejected() {
        for rsv in [0x40u8, 0x20, 0x10, 0x70] {
            for op in [Opcode::Text, Opcode::Binary, Opcode::Ping, Opcode::Close] {
                let mut f = frame(true, op, b"");
                f[0] |= rsv;
                expect_err(&f, proto("reserved bits set"));
            }
            let mut f = cat(&[
                frame(false, Opcode::Text, b"a"),
                frame(true, Opcode::Continuation, b"b"),
            ]);
            f[7] |= rsv;
            expect_err(&f, proto("reserved bits set"));
        }
    }

    // -- UTF-8 -----------------------------------------------------------------

    fn text_in_frames(parts: &[&[u8]]) -> Vec<u8> {
        let n = parts.len();
        let frames: Vec<Vec<u8>> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let op = if i == 0 {
                    Opcode::Text
                } else {
                    Opcode::Continuation
                };
                frame(i + 1 == n, op, p)
            })
            .collect();
        cat(&frames)
    }

    #[test]
    fn invalid_utf8_in_one_frame() {
        expect_err(&frame(true, Opcode::Text, b"abc\xFFdef"), WsError::InvalidUtf8);
        expect_err(&frame(true, Opcode::Text, b"\x80"), WsError::InvalidUtf8);
        expect_err(
            &frame(
                true,
                Opcode::Text,
                b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80edited",
            ),
            WsError::InvalidUtf8,
        );
    }

    #[test]
    fn invalid_utf8_split_across_frames() {
        // A valid lead byte in one frame, a bad continuation in the next.
        expect_err(&text_in_frames(&[b"ab\xE2", b"\x28\xA1"]), WsError::InvalidUtf8);
        expect_err(
            &text_in_frames(&[b"\xF0\x9F", b"\x98", b"A"]),
            WsError::InvalidUtf8,
        );
        expect_err(
            &text_in_frames(&[b"ok", b"ok", b"\xC3\xC3"]),
            WsError::InvalidUtf8,
        );
    }

    #[test]
    fn truncated_code_point_at_message_end() {
        for tail in [&b"\xC3"[..], b"\xE2\x82", b"\xF0\x9F\x98", b"\xF4"] {
            let mut p = b"abc".to_vec();
            p.extend_from_slice(tail);
            expect_err(&frame(true, Opcode::Text, &p), WsError::InvalidUtf8);
            expect_err(&text_in_frames(&[b"abc", tail]), WsError::InvalidUtf8);
            expect_err(&text_in_frames(&[&p, b""]), WsError::InvalidUtf8);
        }
    }

    #[test]
    fn overlong_encodings_rejected() {
        for bad in [
            &b"\xC0\x80"[..],
            b"\xC0\xAF",
            b"\xC1\xBF",
            b"\xE0\x80\x80",
            b"\xE0\x9F\xBF",
            b"\xF0\x80\x80\x80",
            b"\xF0\x8F\xBF\xBF",
        ] {
            expect_err(&frame(true, Opcode::Text, bad), WsError::InvalidUtf8);
        }
    }

    #[test]
    fn surrogates_rejected() {
        for bad in [
            &b"\xED\xA0\x80"[..],
            b"\xED\xAD\xBF",
            b"\xED\xB0\x80",
            b"\xED\xBF\xBF",
            b"\xED\xA0\x80\xED\xB0\x80",
        ] {
            expect_err(&frame(true, Opcode::Text, bad), WsError::InvalidUtf8);
            for cut in 1..bad.len() {
                expect_err(&text_in_frames(&[&bad[..cut], &bad[cut..]]), WsError::InvalidUtf8);
            }
        }
        // Just below and above the surrogate block are fine.
        assert_eq!(
            decode_all(&frame(true, Opcode::Text, b"\xED\x9F\xBF\xEE\x80\x80")).1,
            None
        );
    }

    #[test]
    fn above_u10ffff_rejected() {
        for bad in [
            &b"\xF4\x90\x80\x80"[..],
            b"\xF5\x80\x80\x80",
            b"\xF7\xBF\xBF\xBF",
            b"\xF8\x88\x80\x80\x80",
            b"\xFE",
            b"\xFF",
        ] {
            expect_err(&frame(true, Opcode::Text, bad), WsError::InvalidUtf8);
        }
        assert_eq!(
            decode_all(&frame(true, Opcode::Text, b"\xF4\x8F\xBF\xBF")).1,
            None
        );
    }

    #[test]
    fn invalid_utf8_fails_before_frame_completes() {
        let f = frame(true, Opcode::Text, b"ab\xFFcdefghijkl");
        let mut d = Decoder::new(BIG);
        let mut buf = f[..9].to_vec();
        assert_eq!(d.decode(&mut buf), Err(WsError::InvalidUtf8));
        // A prefix that can never be completed also fails at once.
        let f = frame(true, Opcode::Text, b"ab\xE0\x80cdefghijkl");
        let mut d = Decoder::new(BIG);
        let mut buf = f[..10].to_vec();
        assert_eq!(d.decode(&mut buf), Err(WsError::InvalidUtf8));
    }

    #[test]
    fn valid_utf8_split_at_every_position() {
        let samples: [&[u8]; 4] = [
            "κόσμε".as_bytes(),
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "\u{1F600}a\u{10FFFF}\u{0800}\u{FFFF}\u{80}\u{7FF}\u{10000}".as_bytes(),
            "\u{D7FF}\u{E000}\u{FFFD}".as_bytes(),
        ];
        for s in samples {
            for i in 0..=s.len() {
                // As two frames...
                let bytes = text_in_frames(&[&s[..i], &s[i..]]);
                assert_eq!(decode_all(&bytes), (vec![text(s)], None), "split {i}");
                // ...and as one frame delivered in two reads.
                let f = frame(true, Opcode::Text, s);
                let cut = 6 + i;
                assert_eq!(
                    run_chunks(&mut Decoder::new(BIG), &[&f[..cut], &f[cut..]]),
                    (vec![text(s)], None),
                    "read split {i}"
                );
                for j in i..=s.len() {
                    let bytes = text_in_frames(&[&s[..i], &s[i..j], &s[j..]]);
                    assert_eq!(decode_all(&bytes), (vec![text(s)], None), "split {i},{j}");
                }
            }
            let one_per_frame: Vec<&[u8]> = s.chunks(1).collect();
            assert_eq!(decode_all(&text_in_frames(&one_per_frame)), (vec![text(s)], None));
        }
    }

    #[test]
    fn utf8_validator_agrees_with_std() {
        // Every 1- and 2-byte sequence, plus 3- and 4-byte sequences over the
        // interesting byte values, fed whole and split everywhere.
        let interesting: Vec<u8> = vec![
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC,
            0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ];
        let check = |s: &[u8]| {
            let expect = std::str::from_utf8(s).is_ok();
            for cut in 0..=s.len() {
                let mut v = Utf8Validator::default();
                let got = v
                    .feed(&s[..cut])
                    .and_then(|_| v.feed(&s[cut..]))
                    .and_then(|_| v.finish());
                assert_eq!(got.is_ok(), expect, "{s:02X?} cut {cut}");
            }
        };
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
            }
        }
        for &a in &interesting {
            for &b in &interesting {
                for &c in &interesting {
                    check(&[a, b, c]);
                    for &d in &interesting {
                        check(&[a, b, c, d]);
                    }
                }
            }
        }
    }

    // -- close frames ------------------------------------------------------------

    #[test]
    fn valid_close_codes_accepted() {
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
        ] {
            let p = close_payload(code, "bye");
            assert_eq!(
                decode_all(&frame(true, Opcode::Close, &p)),
                (vec![Ev::Ctl(Opcode::Close, p.clone())], None)
            );
            assert_eq!(parse_close(&p), Ok(Some((code, "bye"))));
        }
    }

    #[test]
    fn invalid_close_codes_rejected() {
        for code in [
            0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let p = close_payload(code, "");
            expect_err(&frame(true, Opcode::Close, &p), proto("invalid close code"));
        }
    }

    #[test]
    fn close_payload_shapes() {
        assert_eq!(
            decode_all(&frame(true, Opcode::Close, b"")),
            (vec![Ev::Ctl(Opcode::Close, vec![])], None)
        );
        assert_eq!(parse_close(b""), Ok(None));
        expect_err(
            &frame(true, Opcode::Close, b"\x03"),
            proto("close frame with a 1-byte payload"),
        );
        let mut p = close_payload(1000, "");
        p.extend_from_slice(b"\xCE\xBA\xFF");
        expect_err(&frame(true, Opcode::Close, &p), WsError::InvalidUtf8);
        let long = close_payload(1000, &"x".repeat(123));
        assert_eq!(long.len(), 125);
        assert_eq!(decode_all(&frame(true, Opcode::Close, &long)).1, None);
    }

    #[test]
    fn close_inside_fragmented_message() {
        let bytes = cat(&[
            frame(false, Opcode::Text, b"half"),
            frame(true, Opcode::Close, &close_payload(1000, "")),
        ]);
        assert_eq!(
            decode_all(&bytes),
            (vec![Ev::Ctl(Opcode::Close, vec![0x03, 0xE8])], None)
        );
    }

    #[test]
    fn everything_after_close_is_discarded() {
        let mut bytes = cat(&[
            frame(true, Opcode::Close, &close_payload(1000, "")),
            frame(true, Opcode::Text, b"ignored"),
        ]);
        bytes.extend_from_slice(b"\xFF\xFF\xFF junk that is not a frame");
        let mut d = Decoder::new(BIG);
        let (n, dec) = d.decode(&mut bytes).unwrap();
        assert!(matches!(
            dec,
            Decoded::Control {
                opcode: Opcode::Close,
                ..
            }
        ));
        assert!(d.is_closed());
        let mut rest = bytes[n..].to_vec();
        let all = rest.len();
        assert_eq!(d.decode(&mut rest), Ok((all, Decoded::NeedMore)));
    }

    #[test]
    fn close_payload_truncates_at_char_boundary() {
        let p = close_payload(1001, "short");
        assert_eq!(p, b"\x03\xE9short");
        // 62 two-byte chars = 124 bytes; only 61 fit in 123.
        let p = close_payload(1000, &"é".repeat(62));
        assert_eq!(p.len(), 2 + 122);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        let p = close_payload(4000, &format!("a{}", "😀".repeat(40)));
        assert!(p.len() <= 125);
        assert_eq!(p.len(), 2 + 1 + 30 * 4);
        assert_eq!(parse_close(&p).unwrap().unwrap().0, 4000);
    }

    // -- size limits ---------------------------------------------------------------

    #[test]
    fn message_too_big_single_frame() {
        let mut d = Decoder::new(100);
        assert_eq!(
            run(&mut d, &frame(true, Opcode::Binary, &[0; 100])),
            (vec![bin(&[0; 100])], None)
        );
        let mut d = Decoder::new(100);
        assert_eq!(
            run(&mut d, &frame(true, Opcode::Binary, &[0; 101])).1,
            Some(WsError::TooBig)
        );
        // Refused from the header alone, before any payload arrives.
        let f = frame(true, Opcode::Binary, &[0; 70_000]);
        let mut d = Decoder::new(65_536);
        assert_eq!(d.decode(&mut f[..14].to_vec()), Err(WsError::TooBig));
        let mut huge = raw_header(0x82, &[127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            Decoder::new(u64::MAX).decode(&mut huge),
            Ok((14, Decoded::NeedMore))
        );
        assert_eq!(Decoder::new(BIG).decode(&mut huge), Err(WsError::TooBig));
    }

    #[test]
    fn message_too_big_across_fragments() {
        let ok = cat(&[
            frame(false, Opcode::Text, &[b'a'; 60]),
            frame(true, Opcode::Continuation, &[b'a'; 40]),
        ]);
        assert_eq!(run(&mut Decoder::new(100), &ok), (vec![text(&[b'a'; 100])], None));
        let bad = cat(&[
            frame(false, Opcode::Text, &[b'a'; 60]),
            frame(false, Opcode::Continuation, &[b'a'; 40]),
            frame(true, Opcode::Continuation, &[b'a'; 1]),
        ]);
        assert_eq!(run(&mut Decoder::new(100), &bad).1, Some(WsError::TooBig));
        // The limit is per message, and control frames do not count.
        let many = cat(&[
            frame(true, Opcode::Binary, &[1; 100]),
            frame(false, Opcode::Binary, &[2; 50]),
            frame(true, Opcode::Ping, &[0; 125]),
            frame(true, Opcode::Continuation, &[2; 50]),
        ]);
        let (ev, e) = run(&mut Decoder::new(100), &many);
        assert_eq!(e, None);
        assert_eq!(ev.len(), 3);
    }

    #[test]
    fn errors_are_sticky() {
        let mut d = Decoder::new(BIG);
        let mut bad = frame(true, Opcode::Continuation, b"x");
        assert!(d.decode(&mut bad).is_err());
        let mut good = frame(true, Opcode::Text, b"x");
        assert_eq!(
            d.decode(&mut good),
            Err(proto("continuation frame without a message"))
        );
    }

    // -- whole streams -----------------------------------------------------------

    fn sample_stream() -> (Vec<u8>, Vec<Ev>) {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 256) as u8).collect();
        let s = "añ€😀".repeat(50);
        let bytes = cat(&[
            frame(true, Opcode::Text, b"one"),
            frame(false, Opcode::Binary, &big[..300]),
            frame(true, Opcode::Ping, b"ping"),
            frame(false, Opcode::Continuation, &big[300..]),
            frame(true, Opcode::Continuation, b""),
            text_in_frames(&[&s.as_bytes()[..5], &s.as_bytes()[5..333], &s.as_bytes()[333..]]),
            frame(true, Opcode::Pong, b""),
            frame(true, Opcode::Binary, b""),
            frame(true, Opcode::Close, &close_payload(1000, "done")),
        ]);
        let events = vec![
            text(b"one"),
            Ev::Ctl(Opcode::Ping, b"ping".to_vec()),
            bin(&big),
            text(s.as_bytes()),
            Ev::Ctl(Opcode::Pong, vec![]),
            bin(b""),
            Ev::Ctl(Opcode::Close, close_payload(1000, "done")),
        ];
        (bytes, events)
    }

    #[test]
    fn byte_by_byte_equals_all_at_once() {
        let (bytes, events) = sample_stream();
        assert_eq!(decode_all(&bytes), (events.clone(), None));
        assert_eq!(run_bytewise(&mut Decoder::new(BIG), &bytes), (events, None));
    }

    /// Deterministic pseudo-random numbers (Knuth's MMIX LCG).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_chunking_equals_all_at_once() {
        let (bytes, events) = sample_stream();
        let mut rng = Lcg(42);
        for _ in 0..40 {
            let mut chunks = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = (1 + rng.below(700) as usize).min(rest.len());
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
            }
            assert_eq!(
                run_chunks(&mut Decoder::new(BIG), &chunks),
                (events.clone(), None)
            );
        }
    }

    #[test]
    fn fixed_buffer_caller_never_needs_more_than_min_buffer() {
        // A caller with a tiny fixed buffer (refilled as bytes are consumed)
        // still gets through a stream with maximal control frames.
        let (mut bytes, mut events) = sample_stream();
        bytes.truncate(bytes.len() - 12);
        events.pop();
        bytes.extend(frame(true, Opcode::Ping, &[9; 125]));
        events.push(Ev::Ctl(Opcode::Ping, vec![9; 125]));
        let mut dec = Decoder::new(BIG);
        let mut buf = [0u8; MIN_BUFFER];
        let (mut filled, mut src) = (0usize, &bytes[..]);
        let mut got = Vec::new();
        let mut cur: Option<(bool, Vec<u8>)> = None;
        loop {
            let n = (buf.len() - filled).min(src.len());
            buf[filled..filled + n].copy_from_slice(&src[..n]);
            filled += n;
            src = &src[n..];
            let (used, more) = match dec.decode(&mut buf[..filled]).unwrap() {
                (used, Decoded::NeedMore) => (used, false),
                (used, Decoded::Data { text, payload, end }) => {
                    let m = cur.get_or_insert_with(|| (text, Vec::new()));
                    m.1.extend_from_slice(payload);
                    if end {
                        let (t, d) = cur.take().unwrap();
                        got.push(Ev::Msg(t, d));
                    }
                    (used, true)
                }
                (used, Decoded::Control { opcode, payload }) => {
                    got.push(Ev::Ctl(opcode, payload.to_vec()));
                    (used, true)
                }
            };
            buf.copy_within(used..filled, 0);
            filled -= used;
            if !more && src.is_empty() {
                break;
            }
            assert!(more || used > 0 || filled < buf.len(), "stuck with a full buffer");
        }
        assert_eq!(filled, 0);
        assert_eq!(got, events);
    }

    #[test]
    fn encoder_output_decodes_back_for_many_lengths() {
        let mut rng = Lcg(7);
        let mut len = 0usize;
        while len < 200_000 {
            let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mask = [
                rng.next() as u8,
                rng.next() as u8,
                rng.next() as u8,
                rng.next() as u8,
            ];
            let f = encode_frame(true, Opcode::Binary, &payload, Some(mask));
            assert_eq!(decode_all(&f), (vec![bin(&payload)], None), "len {len}");
            // The server-side header for the same payload is the client's
            // minus the mask bit and key.
            let mut head = [0u8; 10];
            let n = encode_header(true, Opcode::Binary, len as u64, &mut head);
            assert_eq!(&f[..n], {
                let mut h = head[..n].to_vec();
                h[1] |= 0x80;
                h
            });
            len = if len < 300 { len + 1 } else { len * 3 / 2 };
        }
    }

    #[test]
    fn unmasked_encode_frame_is_server_format() {
        let f = encode_frame(true, Opcode::Text, b"Hello", None);
        assert_eq!(f, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let f = encode_frame(true, Opcode::Ping, b"Hello", None);
        assert_eq!(f, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn random_junk_never_panics() {
        let mut rng = Lcg(0xDEAD_BEEF);
        for round in 0..3000 {
            let len = rng.below(300) as usize;
            let mut junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Bias towards plausible headers so the deeper paths get hit.
            if round % 2 == 0 && len >= 2 {
                junk[0] = [0x81, 0x82, 0x01, 0x00, 0x80, 0x88, 0x89, 0x8A][rng.below(8) as usize];
                junk[1] |= 0x80;
            }
            let mut d = Decoder::new(rng.below(1000));
            let mut pos = 0;
            for _ in 0..1000 {
                match d.decode(&mut junk[pos..]) {
                    Err(_) => break,
                    Ok((n, dec)) => {
                        let done = matches!(dec, Decoded::NeedMore);
                        pos += n;
                        assert!(pos <= junk.len());
                        if done {
                            break;
                        }
                    }
                }
            }
            let chunks: Vec<&[u8]> = junk.chunks(1 + rng.below(7) as usize).collect();
            let _ = run_chunks(&mut Decoder::new(BIG), &chunks);
        }
    }

    #[test]
    fn random_valid_streams_roundtrip() {
        let mut rng = Lcg(2024);
        for round in 0..200 {
            let mut bytes = Vec::new();
            let mut events = Vec::new();
            for _ in 0..rng.below(8) {
                let is_text = rng.below(2) == 0;
                let len = rng.below(2000) as usize;
                let payload: Vec<u8> = if is_text {
                    let s: String = (0..len)
                        .map(|_| ['a', 'é', '€', '😀', '\u{10FFFF}'][rng.below(5) as usize])
                        .collect();
                    s.into_bytes()
                } else {
                    (0..len).map(|_| rng.next() as u8).collect()
                };
                let mut cuts: Vec<usize> = (0..rng.below(4))
                    .map(|_| rng.below(payload.len() as u64 + 1) as usize)
                    .collect();
                cuts.sort();
                let mut start = 0;
                let mut pieces = Vec::new();
                for c in cuts.into_iter().chain([payload.len()]) {
                    pieces.push(&payload[start..c]);
                    start = c;
                }
                let n = pieces.len();
                for (i, p) in pieces.iter().enumerate() {
                    let op = match (i, is_text) {
                        (0, true) => Opcode::Text,
                        (0, false) => Opcode::Binary,
                        _ => Opcode::Continuation,
                    };
                    bytes.extend(encode_frame(
                        i + 1 == n,
                        op,
                        p,
                        Some([rng.next() as u8, 1, 2, rng.next() as u8]),
                    ));
                    if i + 1 == n {
                        events.push(Ev::Msg(is_text, payload.clone()));
                    }
                    if rng.below(4) == 0 {
                        bytes.extend(frame(true, Opcode::Ping, &[3; 7]));
                        events.push(Ev::Ctl(Opcode::Ping, vec![3; 7]));
                    }
                }
            }
            let mut chunks = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = (1 + rng.below(50) as usize).min(rest.len());
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
            }
            let got = run_chunks(&mut Decoder::new(BIG), &chunks);
            assert!(got == (events, None), "random stream {round} differs");
        }
    }
}

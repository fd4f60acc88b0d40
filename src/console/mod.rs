//! Browser terminals: one authenticated WebSocket bridged to a `docker exec`
//! (or, for protocol tests, an echo). The exec is created and started
//! hijacked here; binary frames carry its input and output, text frames
//! carry control messages (`{"type":"resize","cols":C,"rows":R}`), and the
//! socket ends with the exit code. Each console holds two pooled 32 KiB
//! buffers, and stops reading from the exec while the browser is behind.
//!
//! The browser is pinged every `console_ping`; one that has not answered by
//! the next ping, or a console with neither input nor output for
//! `console_idle`, is closed (1001). Once the browser is gone, however and
//! whenever it went, a `Reaper` ends the exec's process.

pub mod reaper;
pub mod websocket;

use std::io;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::console::reaper::{boot_ticks, Reaper};
use crate::console::websocket::{
    close_payload, encode_header, parse_close, Decoded, Decoder, Opcode, WsError,
};
use crate::http::chunked;
use crate::http::reply::json_text;
use crate::http::response::{parse_response_head, ResponseBody};
use crate::net::head_reader::HeadReader;
use crate::net::outbox::Outbox;
use crate::net::socket::Side;
use crate::relay::pool::{Buffer, Resources};
use crate::stats::{Gauge, Held};

/// Largest message from the browser; text (control) messages are smaller.
pub const MAX_MESSAGE: u64 = 16 * 1024 * 1024;
const MAX_CONTROL_MESSAGE: usize = 4096;
/// Largest reply dockerd gives to our own calls (exec create and inspect).
const MAX_CALL_REPLY: usize = 16 * 1024;
/// Exit-code lookups while dockerd has not recorded the exit yet.
const EXIT_LOOKUPS: u32 = 200;
/// Output sent to the browser in one frame at most.
const OUT_FRAME: usize = 8 * 1024;
/// How long a console that closed itself waits for its last frames to leave.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A piece of a data message decoded in place, still in the input buffer.
#[derive(Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    text: bool,
    last: bool,
}

/// The browser's side: frame decoding on one buffer, encoding on another.
pub struct WsLink {
    decoder: Decoder,
    inbuf: Buffer,
    outbuf: Buffer,
    pending: Option<Piece>,
    /// The next data piece starts a new message (echo framing).
    at_message_start: bool,
    control: Vec<u8>,
    /// A pong owed to the browser, sent before anything else is read.
    pong: Option<Vec<u8>>,
    /// Echo mode only: the message being collected, and one being sent
    /// back (bytes, bytes sent, is text).
    message: Vec<u8>,
    echo_out: Option<(Vec<u8>, usize, bool)>,
    /// The browser's Close, to be answered with this code.
    close_owed: Option<u16>,
    close_sent: bool,
    peer_closed: bool,
}

enum Msg {
    Piece,
    Ping(Vec<u8>),
    Pong,
    Close(u16),
}

impl WsLink {
    fn new(res: &Resources) -> WsLink {
        WsLink {
            decoder: Decoder::new(MAX_MESSAGE),
            inbuf: res.take_buffer(),
            outbuf: res.take_buffer(),
            pending: None,
            at_message_start: true,
            control: Vec::new(),
            pong: None,
            message: Vec::new(),
            echo_out: None,
            close_owed: None,
            close_sent: false,
            peer_closed: false,
        }
    }

    fn room(&self) -> usize {
        self.outbuf.data.len() - (self.outbuf.end - self.outbuf.start)
    }

    /// Appends raw bytes (the handshake reply) if they fit.
    fn queue_raw(&mut self, bytes: &[u8]) -> bool {
        if self.room() < bytes.len() {
            return false;
        }
        let b = &mut self.outbuf;
        if b.data.len() - b.end < bytes.len() {
            b.data.copy_within(b.start..b.end, 0);
            b.end -= b.start;
            b.start = 0;
        }
        b.data[b.end..b.end + bytes.len()].copy_from_slice(bytes);
        b.end += bytes.len();
        true
    }

    /// Queues one frame if it fits whole; `false` means "later".
    fn queue_frame(&mut self, fin: bool, opcode: Opcode, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut head = [0u8; 10];
        let n = encode_header(fin, opcode, len as u64, &mut head);
        if self.room() < n + len || self.close_sent {
            return false;
        }
        self.queue_raw(&head[..n]);
        for p in parts {
            self.queue_raw(p);
        }
        true
    }

    fn queue_close(&mut self, code: u16, reason: &str) {
        let payload = close_payload(code, reason);
        if self.queue_frame(true, Opcode::Close, &[&payload]) {
            self.close_sent = true;
        }
    }

    fn flush(&mut self, front: &mut Side) -> io::Result<bool> {
        let sent = front.send_ready(&self.outbuf.data[self.outbuf.start..self.outbuf.end])?;
        self.outbuf.start += sent;
        let progress = sent > 0;
        if self.outbuf.start == self.outbuf.end {
            self.outbuf.start = 0;
            self.outbuf.end = 0;
        }
        Ok(progress)
    }

    fn flushed(&self) -> bool {
        self.outbuf.start == self.outbuf.end
    }

    /// Reads more frames from the browser when there is room for them.
    fn read(&mut self, front: &mut Side) -> io::Result<bool> {
        if self.pending.is_some() || self.peer_closed || !front.readable {
            return Ok(false);
        }
        let b = &mut self.inbuf;
        if b.start > 0 {
            b.data.copy_within(b.start..b.end, 0);
            b.end -= b.start;
            b.start = 0;
        }
        if b.end == b.data.len() {
            return Ok(false);
        }
        match front.read(&mut b.data[b.end..])? {
            Some(0) => {
                self.peer_closed = true;
                Ok(true)
            }
            Some(n) => {
                b.end += n;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Decodes the next event from buffered input.
    fn next(&mut self) -> Result<Option<Msg>, WsError> {
        while self.pending.is_none() && self.inbuf.start < self.inbuf.end && !self.decoder.is_closed() {
            let base = self.inbuf.start;
            let window = &mut self.inbuf.data[base..self.inbuf.end];
            let origin = window.as_ptr() as usize;
            let (used, decoded) = self.decoder.decode(window)?;
            let msg = match decoded {
                Decoded::NeedMore => None,
                Decoded::Data { text, payload, end } => {
                    let start = base + (payload.as_ptr() as usize - origin);
                    self.pending = Some(Piece {
                        start,
                        end: start + payload.len(),
                        text,
                        last: end,
                    });
                    Some(Msg::Piece)
                }
                Decoded::Control {
                    opcode: Opcode::Ping,
                    payload,
                } => Some(Msg::Ping(payload.to_vec())),
                Decoded::Control {
                    opcode: Opcode::Pong, ..
                } => Some(Msg::Pong),
                Decoded::Control {
                    opcode: Opcode::Close,
                    payload,
                } => {
                    let code = parse_close(payload)?.map_or(1000, |(c, _)| c);
                    Some(Msg::Close(code))
                }
                Decoded::Control { .. } => None,
            };
            self.inbuf.start += used;
            if let Some(m) = msg {
                return Ok(Some(m));
            }
            if used == 0 {
                break;
            }
        }
        Ok(None)
    }

    /// Echo mode collects each message whole (a test peer expects nothing
    /// of a message that later turns out invalid). `true` once the pending
    /// piece is taken.
    fn echo(&mut self) -> bool {
        self.drain_echo();
        let Some(p) = self.pending else {
            return true;
        };
        if self.echo_out.is_some() {
            return false;
        }
        self.message.extend_from_slice(&self.inbuf.data[p.start..p.end]);
        if p.last {
            self.echo_out = Some((std::mem::take(&mut self.message), 0, p.text));
            self.at_message_start = true;
            self.drain_echo();
        }
        true
    }

    /// Queues as much of the collected message as there is room for.
    fn drain_echo(&mut self) -> bool {
        let mut progress = false;
        while let Some((msg, sent, text)) = self.echo_out.take() {
            let take = (msg.len() - sent).min(self.room().saturating_sub(10));
            let fin = sent + take == msg.len();
            if take == 0 && !fin {
                self.echo_out = Some((msg, sent, text));
                break;
            }
            let opcode = match (self.at_message_start, text) {
                (false, _) => Opcode::Continuation,
                (true, true) => Opcode::Text,
                (true, false) => Opcode::Binary,
            };
            if !self.queue_frame(fin, opcode, &[&msg[sent..sent + take]]) {
                self.echo_out = Some((msg, sent, text));
                break;
            }
            progress = true;
            self.at_message_start = fin;
            if !fin {
                self.echo_out = Some((msg, sent + take, text));
            }
        }
        progress
    }
}

#[derive(Deserialize)]
struct Control {
    #[serde(rename = "type")]
    kind: String,
    cols: Option<u16>,
    rows: Option<u16>,
    data: Option<String>,
}

/// An HTTP request of ours to dockerd and its small reply.
pub struct Call {
    out: Outbox,
    connected: bool,
    reader: HeadReader,
    /// The most of the reply read at once: what comes after it (only ever
    /// the exec's stream, after a switch) must fit the browser's buffer.
    read_limit: usize,
}

pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// Bytes that came after the reply: after a switch, the first of the
    /// exec's stream.
    pub after: Vec<u8>,
}

impl Call {
    pub fn new(method: &str, path: &str, extra: &str, body: &str) -> Call {
        let out = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Call {
            out: Outbox::new(out.into_bytes()),
            connected: false,
            reader: HeadReader::default(),
            read_limit: MAX_CALL_REPLY,
        }
    }

    /// Sends the request and reads the reply head and body (and whatever
    /// came with them, in `after`).
    pub fn poll(&mut self, side: &mut Side, scratch: &mut [u8]) -> Result<Option<Reply>, &'static str> {
        if !self.connected {
            if !side.writable {
                return Ok(None);
            }
            match side.stream.take_error() {
                Ok(None) => self.connected = true,
                _ => return Err("cannot connect to the Docker daemon"),
            }
        }
        if self.out.flush(side).is_err() {
            return Err("the Docker daemon closed the connection");
        }
        if !self.out.is_empty() || !side.readable {
            return Ok(None);
        }
        let Some(got) = self.reader.read(side, scratch, self.read_limit)? else {
            return Ok(None);
        };
        let buf = &scratch[..got.len];
        let head = match parse_response_head(buf, self.read_limit, 100, false) {
            Ok(Some(h)) => h,
            Ok(None) => {
                self.reader.keep(buf);
                return Ok(None);
            }
            Err(_) => return Err("malformed reply from the Docker daemon"),
        };
        let rest = &buf[head.head_len..];
        let body = match head.body {
            // What follows a switch is the exec's stream.
            _ if head.status == 101 => Some((0, Vec::new())),
            ResponseBody::None => Some((0, Vec::new())),
            ResponseBody::Length(len) => {
                (len as usize <= rest.len()).then(|| (len as usize, rest[..len as usize].to_vec()))
            }
            ResponseBody::Chunked => {
                let mut t = chunked::ChunkedTracker::new();
                match t.advance(rest) {
                    Ok(k) if t.is_done() => Some((
                        k,
                        chunked::decode(&rest[..k]).map_err(|_| "malformed reply from the Docker daemon")?,
                    )),
                    Ok(_) => None,
                    Err(_) => return Err("malformed reply from the Docker daemon"),
                }
            }
            ResponseBody::UntilClose => None,
        };
        let Some((used, body)) = body else {
            if got.len >= self.read_limit {
                return Err("reply from the Docker daemon too large");
            }
            self.reader.keep(buf);
            return Ok(None);
        };
        Ok(Some(Reply {
            status: head.status,
            body,
            after: rest[used..].to_vec(),
        }))
    }

    fn sent(&self) -> bool {
        self.out.is_empty()
    }
}

fn message_of(reply: &Reply) -> String {
    serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| format!("the Docker daemon answered {}", reply.status))
}

/// What the browser asked for in the console URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub container: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub user: String,
    pub size: Option<(u16, u16)>,
}

impl ExecRequest {
    /// Reads `?cmd=...&cmd=...&tty=1&user=&cols=&rows=` (form-encoded).
    pub fn parse(container: &str, target: &str) -> Result<ExecRequest, &'static str> {
        if !container
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return Err("invalid container name");
        }
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let mut req = ExecRequest {
            container: container.to_string(),
            cmd: Vec::new(),
            tty: true,
            user: String::new(),
            size: None,
        };
        let (mut cols, mut rows) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = form_decode(v).ok_or("invalid query encoding")?;
            match k {
                "cmd" => req.cmd.push(v),
                "tty" => req.tty = matches!(v.as_str(), "1" | "true"),
                "user" => req.user = v,
                "cols" => cols = Some(v.parse::<u16>().map_err(|_| "invalid cols")?),
                "rows" => rows = Some(v.parse::<u16>().map_err(|_| "invalid rows")?),
                _ => {}
            }
        }
        if req.cmd.is_empty() {
            req.cmd.push("/bin/sh".into());
        }
        if let (Some(c), Some(r)) = (cols, rows) {
            req.size = Some((c, r));
        }
        Ok(req)
    }
}

/// `application/x-www-form-urlencoded` value decoding.
fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Splits Docker's multiplexed stream (8-byte headers) into pieces tagged
/// with their stream (1 stdout, 2 stderr).
#[derive(Default)]
struct Demux {
    header: [u8; 8],
    have: usize,
    remaining: usize,
}

impl Demux {
    /// Returns (stream, bytes of `input` used, payload range in `input`).
    fn next(&mut self, input: &[u8]) -> (u8, usize, std::ops::Range<usize>) {
        let mut i = 0;
        while self.remaining == 0 && i < input.len() {
            self.header[self.have] = input[i];
            self.have += 1;
            i += 1;
            if self.have == 8 {
                self.have = 0;
                self.remaining =
                    u32::from_be_bytes([self.header[4], self.header[5], self.header[6], self.header[7]])
                        as usize;
            }
        }
        let take = self.remaining.min(input.len() - i);
        self.remaining -= take;
        (self.header[0], i + take, i..i + take)
    }
}

enum Stage {
    Create(Call),
    Start(Call),
    Open,
    /// The process ended; asking for its exit code.
    Exit {
        lookups: u32,
    },
    Finished,
}

struct Exec {
    req: ExecRequest,
    exec_id: String,
    stage: Stage,
    /// A resize or inspect (`true`) call on its own connection.
    aux: Option<(Side, Call, bool)>,
    resize_wanted: Option<(u16, u16)>,
    demux: Demux,
    /// The exec's output ended.
    output_done: bool,
    /// Output arrived since the console last looked.
    output_seen: bool,
    /// The start request went out whole: a process may run from then on.
    start_sent: bool,
    /// Clock ticks since boot just before the start request was sent.
    started_after: Option<u64>,
    /// The process is known to have ended, or never to start.
    process_over: bool,
    /// dockerd is on a local unix socket, so its pids may be ours.
    local_pids: bool,
}

enum Mode {
    Echo,
    Exec(Box<Exec>),
}

pub struct Console {
    link: WsLink,
    mode: Mode,
    /// Handshake reply for the browser, sent once the exec runs.
    handshake: Vec<u8>,
    upgraded: bool,
    /// Pings and the idle limit (exec consoles only).
    keepalive: Option<Keepalive>,
    /// Once closing, the console ends by then even if the browser never
    /// takes its last frames.
    close_by: Option<Instant>,
    /// This console's place under `max_consoles`, given back when it drops.
    _slot: Held,
}

/// When to ping the browser, and when to give up on it.
pub struct Keepalive {
    interval: Duration,
    idle_limit: Duration,
    next_ping: Instant,
    /// A ping is out; no answer by `next_ping` closes the console.
    awaiting_pong: bool,
    pings: u64,
    last_activity: Instant,
}

#[derive(Debug, PartialEq, Eq)]
enum Due {
    Nothing,
    Ping([u8; 8]),
    Close(&'static str),
}

impl Keepalive {
    pub fn new(interval: Duration, idle_limit: Duration, now: Instant) -> Keepalive {
        Keepalive {
            interval,
            idle_limit,
            next_ping: now + interval,
            awaiting_pong: false,
            pings: 0,
            last_activity: now,
        }
    }

    /// Counting starts again (at the upgrade).
    fn restart(&mut self, now: Instant) {
        *self = Keepalive::new(self.interval, self.idle_limit, now);
    }

    /// Input from the browser or output from the exec.
    fn active(&mut self, now: Instant) {
        self.last_activity = now;
    }

    fn answered(&mut self) {
        self.awaiting_pong = false;
    }

    fn due(&mut self, now: Instant) -> Due {
        if now >= self.last_activity + self.idle_limit {
            return Due::Close("idle");
        }
        if now < self.next_ping {
            return Due::Nothing;
        }
        if self.awaiting_pong {
            return Due::Close("no pong");
        }
        self.awaiting_pong = true;
        self.pings += 1;
        self.next_ping = now + self.interval;
        Due::Ping(self.pings.to_be_bytes())
    }

    fn deadline(&self) -> Instant {
        self.next_ping.min(self.last_activity + self.idle_limit)
    }
}

/// What the connection should do after `drive`.
pub enum Outcome {
    Continue,
    /// Before the upgrade: answer with an HTTP error instead.
    Fail(u16, String),
    /// The WebSocket is over; close everything.
    Done,
}

/// What `drive` needs from the connection.
pub struct Io<'a> {
    pub front: &'a mut Side,
    pub back: &'a mut Option<Side>,
    pub res: &'a mut Resources,
    /// Opens and registers an extra upstream connection for a call.
    pub connect_aux: &'a mut dyn FnMut() -> io::Result<Side>,
    pub now: Instant,
}

impl Console {
    pub fn echo(handshake: Vec<u8>, slot: Held, res: &mut Resources) -> Console {
        let mut link = WsLink::new(res);
        link.queue_raw(&handshake);
        Console {
            link,
            mode: Mode::Echo,
            handshake: Vec::new(),
            upgraded: true,
            keepalive: None,
            close_by: None,
            _slot: slot,
        }
    }

    /// `back` must be a fresh upstream connection, registered.
    /// `local_pids`: dockerd runs on this host, so its pids may be signalled.
    pub fn exec(
        req: ExecRequest,
        handshake: Vec<u8>,
        local_pids: bool,
        keepalive: Keepalive,
        slot: Held,
        res: &mut Resources,
    ) -> Console {
        let body = json!({
            "AttachStdin": true,
            "AttachStdout": true,
            "AttachStderr": true,
            "Tty": req.tty,
            "Cmd": req.cmd,
            "User": req.user,
            "Env": ["TERM=xterm-256color"],
        });
        let create = Call::new(
            "POST",
            &format!("/containers/{}/exec", req.container),
            "",
            &json_text(&body),
        );
        Console {
            link: WsLink::new(res),
            mode: Mode::Exec(Box::new(Exec {
                req,
                exec_id: String::new(),
                stage: Stage::Create(create),
                aux: None,
                resize_wanted: None,
                demux: Demux::default(),
                output_done: false,
                output_seen: false,
                start_sent: false,
                started_after: None,
                process_over: false,
                local_pids,
            })),
            handshake,
            upgraded: false,
            keepalive: Some(keepalive),
            close_by: None,
            _slot: slot,
        }
    }

    /// The browser side is over: its buffers and slot are given back, and
    /// what is left is ending the exec's process if it may still run.
    pub fn finish(self, ending: &Gauge, now: Instant) -> Option<Reaper> {
        match self.mode {
            Mode::Exec(e) if e.start_sent && !e.process_over => Some(Reaper::new(
                e.exec_id,
                e.started_after,
                e.local_pids,
                now,
                ending.hold(),
            )),
            _ => None,
        }
    }

    /// When `drive` should run again without an event.
    pub fn deadline(&self) -> Option<Instant> {
        let keepalive = self.live_keepalive().map(Keepalive::deadline);
        match (keepalive, self.close_by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn live_keepalive(&self) -> Option<&Keepalive> {
        self.keepalive
            .as_ref()
            .filter(|_| self.upgraded && self.close_by.is_none())
    }

    /// Pings the browser, or closes a console whose browser stopped
    /// answering or that nobody uses.
    fn keep_alive(&mut self, io: &mut Io) -> bool {
        if self.live_keepalive().is_none() {
            return false;
        }
        let Some(k) = self.keepalive.as_mut() else {
            return false;
        };
        match k.due(io.now) {
            Due::Nothing => false,
            Due::Ping(payload) => {
                // A browser that has not taken its earlier frames within an
                // interval will not answer in time either: no retry.
                self.link.queue_frame(true, Opcode::Ping, &[&payload]);
                true
            }
            Due::Close(reason) => {
                log::info!("console closed: {reason}");
                self.link.queue_close(1001, reason);
                self.link.peer_closed = true;
                if let Mode::Exec(e) = &mut self.mode {
                    e.stop(io);
                }
                true
            }
        }
    }

    pub fn aux_side(&mut self) -> Option<&mut Side> {
        match &mut self.mode {
            Mode::Exec(e) => e.aux.as_mut().map(|(s, _, _)| s),
            Mode::Echo => None,
        }
    }

    pub fn drive(&mut self, io: &mut Io) -> Outcome {
        loop {
            let mut progress = self.keep_alive(io);
            progress |= match self.step(io) {
                Ok(p) => p,
                Err(e) => {
                    // A protocol error: close with its code, drop the rest
                    // of the input (the decoder's error is sticky) and end.
                    self.link.queue_close(e.close_code(), e.reason());
                    self.link.peer_closed = true;
                    self.link.pending = None;
                    self.link.inbuf.start = self.link.inbuf.end;
                    if let Mode::Exec(x) = &mut self.mode {
                        x.stop(io);
                    }
                    true
                }
            };
            if let Mode::Exec(e) = &mut self.mode {
                let was_upgraded = self.upgraded;
                match e.advance(&mut self.link, io, &mut self.handshake, &mut self.upgraded) {
                    Ok(p) => progress |= p,
                    Err((status, msg)) if !self.upgraded => return Outcome::Fail(status, msg),
                    Err((_, msg)) => {
                        log::debug!("console ended: {msg}");
                        self.link.queue_close(1011, &msg);
                        e.stage = Stage::Finished;
                    }
                }
                if let Some(k) = self.keepalive.as_mut() {
                    if self.upgraded && !was_upgraded {
                        k.restart(io.now);
                    }
                    if std::mem::take(&mut e.output_seen) {
                        k.active(io.now);
                    }
                }
            }
            match self.link.flush(io.front) {
                Ok(p) => progress |= p,
                Err(_) => return Outcome::Done,
            }
            if self.close_by.is_none() && (self.link.close_sent || self.ended()) {
                self.close_by = Some(io.now + CLOSE_GRACE);
            }
            if self.finished() || self.close_by.is_some_and(|at| io.now >= at) {
                return Outcome::Done;
            }
            if !progress {
                return Outcome::Continue;
            }
        }
    }

    fn finished(&self) -> bool {
        self.ended() && self.link.flushed()
    }

    /// Nothing more is coming: only queued frames are left to send.
    fn ended(&self) -> bool {
        match &self.mode {
            Mode::Echo => {
                self.link.close_sent
                    || (self.link.peer_closed
                        && self.link.echo_out.is_none()
                        && self.link.close_owed.is_none())
            }
            Mode::Exec(e) => matches!(e.stage, Stage::Finished),
        }
    }

    /// Browser input: frames decoded and handed to their sink.
    fn step(&mut self, io: &mut Io) -> Result<bool, WsError> {
        if !self.upgraded {
            return Ok(false);
        }
        let mut progress = self.link.read(io.front).unwrap_or_else(|_| {
            self.link.peer_closed = true;
            true
        });
        if matches!(self.mode, Mode::Echo) {
            progress |= self.link.drain_echo();
        }
        if let Some(payload) = self.link.pong.take() {
            if !self.link.queue_frame(true, Opcode::Pong, &[&payload]) {
                self.link.pong = Some(payload);
                return Ok(progress);
            }
            progress = true;
        }
        if self.link.pending.is_none() {
            match self.link.next()? {
                Some(Msg::Ping(payload)) => {
                    self.link.pong = Some(payload);
                    progress = true;
                }
                Some(Msg::Pong) => {
                    if let Some(k) = self.keepalive.as_mut() {
                        k.answered();
                    }
                    progress = true;
                }
                Some(Msg::Close(code)) => {
                    self.link.close_owed = Some(code);
                    self.link.peer_closed = true;
                    progress = true;
                }
                Some(Msg::Piece) => {
                    if let Some(k) = self.keepalive.as_mut() {
                        k.active(io.now);
                    }
                    progress = true;
                }
                None => {}
            }
        }
        if let Some(piece) = self.link.pending {
            let sunk = match &mut self.mode {
                Mode::Echo => self.link.echo(),
                Mode::Exec(e) => e.input(&mut self.link, piece, io)?,
            };
            if sunk {
                self.link.pending = None;
                progress = true;
            }
        }
        // The close reply goes after any echo still being sent.
        if let Some(code) = self.link.close_owed.filter(|_| self.link.echo_out.is_none()) {
            self.link.queue_close(code, "");
            self.link.close_owed = None;
            progress = true;
        }
        if self.link.peer_closed {
            if let Mode::Exec(e) = &mut self.mode {
                e.stop(io);
            }
        }
        Ok(progress)
    }
}

impl Exec {
    /// The browser is gone or said goodbye: the exec's stdin closes, and
    /// the process is ended by the `Reaper` that `finish` hands over.
    fn stop(&mut self, io: &mut Io) {
        if let Some(back) = io.back.as_mut() {
            back.shutdown_write();
        }
        self.stage = Stage::Finished;
    }

    /// Hands one decoded piece to the exec; `Ok(false)` means "not yet".
    fn input(&mut self, link: &mut WsLink, piece: Piece, io: &mut Io) -> Result<bool, WsError> {
        if piece.text {
            let payload = &link.inbuf.data[piece.start..piece.end];
            if link.control.len() + payload.len() > MAX_CONTROL_MESSAGE {
                return Err(WsError::TooBig);
            }
            link.control.extend_from_slice(payload);
            if piece.last {
                let msg = std::mem::take(&mut link.control);
                match serde_json::from_slice::<Control>(&msg) {
                    Ok(c) if c.kind == "resize" => {
                        if let (Some(cols), Some(rows)) = (c.cols, c.rows) {
                            self.resize_wanted = Some((cols, rows));
                        }
                    }
                    Ok(c) if c.kind == "stdin" => {
                        if let Some(back) = io.back.as_mut().filter(|_| matches!(self.stage, Stage::Open)) {
                            // Small by construction; a full socket here is the exec's problem.
                            let _ = back.write(c.data.unwrap_or_default().as_bytes());
                        }
                    }
                    _ => return Err(WsError::Protocol("unknown control message")),
                }
            }
            return Ok(true);
        }
        // Input waits for earlier resizes, so the program sees them in order.
        if self.resize_wanted.is_some() || self.aux.is_some() {
            return Ok(false);
        }
        let Some(back) = io.back.as_mut().filter(|_| matches!(self.stage, Stage::Open)) else {
            return Ok(true);
        };
        let Some(p) = link.pending.as_mut() else {
            return Ok(true);
        };
        match back.send_ready(&link.inbuf.data[p.start..p.end]) {
            Ok(sent) => p.start += sent,
            Err(_) => return Ok(true),
        }
        Ok(p.start == p.end)
    }

    /// Errors carry the HTTP status to answer with before the upgrade.
    fn advance(
        &mut self,
        link: &mut WsLink,
        io: &mut Io,
        handshake: &mut Vec<u8>,
        upgraded: &mut bool,
    ) -> Result<bool, (u16, String)> {
        let gateway = |m: &str| (502, m.to_string());
        let mut progress = false;
        match &mut self.stage {
            Stage::Create(call) => {
                let Some(back) = io.back.as_mut() else {
                    return Err(gateway("no upstream"));
                };
                if let Some(reply) = call.poll(back, &mut io.res.scratch).map_err(gateway)? {
                    if reply.status != 201 {
                        return Err((reply.status, message_of(&reply)));
                    }
                    let id = serde_json::from_slice::<serde_json::Value>(&reply.body)
                        .ok()
                        .and_then(|v| v.get("Id").and_then(|i| i.as_str()).map(str::to_string))
                        .filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric()))
                        .ok_or_else(|| gateway("unexpected exec create reply"))?;
                    self.started_after = boot_ticks();
                    let body = json_text(&json!({ "Detach": false, "Tty": self.req.tty }));
                    let mut start = Call::new(
                        "POST",
                        &format!("/exec/{id}/start"),
                        "Connection: Upgrade\r\nUpgrade: tcp\r\n",
                        &body,
                    );
                    // The stream's first bytes may come with the switch:
                    // no more than one output frame, which the browser's
                    // buffer has room for right after the handshake.
                    start.read_limit = OUT_FRAME;
                    start_connected(&mut self.stage, start);
                    self.exec_id = id;
                    progress = true;
                }
            }
            Stage::Start(call) => {
                let Some(back) = io.back.as_mut() else {
                    return Err(gateway("no upstream"));
                };
                let reply = call.poll(back, &mut io.res.scratch);
                self.start_sent |= call.sent();
                if let Some(reply) = reply.map_err(gateway)? {
                    if reply.status != 101 && reply.status != 200 {
                        self.process_over = true;
                        return Err((reply.status, message_of(&reply)));
                    }
                    link.queue_raw(handshake);
                    handshake.clear();
                    *upgraded = true;
                    self.stage = Stage::Open;
                    if !reply.after.is_empty() {
                        self.output_seen = true;
                        self.emit(link, &reply.after);
                    }
                    self.resize_wanted = self.resize_wanted.or(self.req.size.filter(|_| self.req.tty));
                    progress = true;
                }
            }
            Stage::Open => progress |= self.output(link, io),
            Stage::Exit { .. } | Stage::Finished => {}
        }
        progress |= self.calls(link, io).map_err(gateway)?;
        Ok(progress)
    }

    /// Exec output to the browser, as far as the browser keeps up.
    fn output(&mut self, link: &mut WsLink, io: &mut Io) -> bool {
        let Some(back) = io.back.as_mut() else {
            return false;
        };
        let mut progress = false;
        while back.readable && link.room() > OUT_FRAME + 16 && !self.output_done {
            let scratch = &mut io.res.scratch[..OUT_FRAME];
            match back.read(scratch) {
                Ok(Some(0)) | Err(_) => {
                    self.output_done = true;
                    self.stage = Stage::Exit { lookups: 0 };
                }
                Ok(Some(n)) => {
                    self.output_seen = true;
                    self.emit(link, &scratch[..n]);
                }
                Ok(None) => break,
            }
            progress = true;
        }
        progress
    }

    /// Frames exec output for the browser: as it is with a TTY, otherwise
    /// each piece of Docker's multiplexed stream tagged with its stream.
    fn emit(&mut self, link: &mut WsLink, mut data: &[u8]) {
        if self.req.tty {
            link.queue_frame(true, Opcode::Binary, &[data]);
            return;
        }
        while !data.is_empty() {
            let (stream, used, range) = self.demux.next(data);
            if !range.is_empty() {
                link.queue_frame(true, Opcode::Binary, &[&[stream], &data[range]]);
            }
            data = &data[used..];
        }
    }

    /// Resize and exit-code calls on their own upstream connection.
    fn calls(&mut self, link: &mut WsLink, io: &mut Io) -> Result<bool, &'static str> {
        if self.aux.is_none() {
            let (call, inspect) = match (&self.stage, self.resize_wanted) {
                (Stage::Exit { .. }, _) => (
                    Call::new("GET", &format!("/exec/{}/json", self.exec_id), "", ""),
                    true,
                ),
                (Stage::Open, Some((cols, rows))) => {
                    let path = format!("/exec/{}/resize?h={rows}&w={cols}", self.exec_id);
                    self.resize_wanted = None;
                    (Call::new("POST", &path, "", ""), false)
                }
                _ => return Ok(false),
            };
            let side = (io.connect_aux)().map_err(|_| "cannot connect to the Docker daemon")?;
            self.aux = Some((side, call, inspect));
        }
        let Some((side, call, inspect)) = self.aux.as_mut() else {
            return Ok(false);
        };
        let inspect = *inspect;
        let Some(reply) = call.poll(side, &mut io.res.scratch)? else {
            return Ok(false);
        };
        self.aux = None;
        if let (true, Stage::Exit { lookups }) = (inspect, &mut self.stage) {
            let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
            let running = v.get("Running").and_then(|r| r.as_bool()).unwrap_or(false);
            let code = v.get("ExitCode").and_then(|c| c.as_i64());
            if running && *lookups < EXIT_LOOKUPS {
                *lookups += 1;
                return Ok(true);
            }
            self.process_over = !running;
            let code = code.unwrap_or(-1);
            let exit = json_text(&json!({ "type": "exit", "exit_code": code }));
            link.queue_frame(true, Opcode::Text, &[exit.as_bytes()]);
            link.queue_close(1000, &format!("exit {code}"));
            self.stage = Stage::Finished;
        }
        Ok(true)
    }
}

/// The start request goes on the same (kept-alive) connection.
fn start_connected(stage: &mut Stage, mut start: Call) {
    start.connected = true;
    *stage = Stage::Start(start);
}

/// The reply that completes a browser's WebSocket handshake.
pub fn handshake_reply(accept: &str, protocol: Option<&str>) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(p) = protocol {
        out.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_query() {
        let r = ExecRequest::parse("web", "/x?cmd=sh&cmd=-c&cmd=echo+hi%21&tty=0&cols=100&rows=40").unwrap();
        assert_eq!(r.cmd, ["sh", "-c", "echo hi!"]);
        assert!(!r.tty);
        assert_eq!(r.size, Some((100, 40)));
        let r = ExecRequest::parse("web", "/x").unwrap();
        assert_eq!(r.cmd, ["/bin/sh"]);
        assert!(r.tty);
        assert!(ExecRequest::parse("a/b", "/x").is_err());
        assert!(ExecRequest::parse("a", "/x?cmd=%zz").is_err());
    }

    #[test]
    fn keepalive_pings_then_gives_up_without_a_pong() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = Keepalive::new(s * 20, s * 1800, t0);
        assert_eq!(k.due(t0), Due::Nothing);
        assert_eq!(k.deadline(), t0 + s * 20);
        assert_eq!(k.due(t0 + s * 20), Due::Ping(1u64.to_be_bytes()));
        assert_eq!(k.due(t0 + s * 39), Due::Nothing);
        assert_eq!(k.deadline(), t0 + s * 40);
        assert_eq!(k.due(t0 + s * 40), Due::Close("no pong"));
        // an answer in time keeps it going
        let mut k = Keepalive::new(s * 20, s * 1800, t0);
        assert_eq!(k.due(t0 + s * 20), Due::Ping(1u64.to_be_bytes()));
        k.answered();
        assert_eq!(k.due(t0 + s * 40), Due::Ping(2u64.to_be_bytes()));
    }

    #[test]
    fn keepalive_closes_an_idle_console() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = Keepalive::new(s * 20, s * 30, t0);
        k.active(t0 + s * 10);
        assert_eq!(k.due(t0 + s * 20), Due::Ping(1u64.to_be_bytes()));
        k.answered();
        assert_eq!(k.deadline(), t0 + s * 40);
        assert_eq!(k.due(t0 + s * 39), Due::Nothing);
        assert_eq!(k.due(t0 + s * 40), Due::Close("idle"));
        k.restart(t0 + s * 100);
        assert_eq!(k.due(t0 + s * 101), Due::Nothing);
        assert_eq!(k.deadline(), t0 + s * 120);
    }

    #[test]
    fn demux_across_reads() {
        let mut d = Demux::default();
        let stream = [
            1, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c', 2, 0, 0, 0, 0, 0, 0, 1, b'e',
        ];
        let mut got = Vec::new();
        for chunk in stream.chunks(5) {
            let mut data = chunk;
            while !data.is_empty() {
                let (s, used, range) = d.next(data);
                if !range.is_empty() {
                    got.push((s, data[range].to_vec()));
                }
                data = &data[used..];
            }
        }
        assert_eq!(got, [(1, b"ab".to_vec()), (1, b"c".to_vec()), (2, b"e".to_vec())]);
    }
}

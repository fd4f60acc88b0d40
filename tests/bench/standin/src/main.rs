//! A fast stand-in for dockerd on a unix socket, for the benchmarks: one
//! epoll thread, no allocation on the hot path, so the proxy in front of it
//! is what gets measured. It answers on real Docker API routes (an optional
//! `/vX.Y` prefix is ignored), so a gateway that only forwards known routes
//! lets the requests through:
//!
//!   GET  /_ping                          "OK"
//!   GET  /containers/json                a fixed ~1 KiB JSON array
//!   GET  /containers/ID/archive?bytes=N  N bytes with Content-Length (download)
//!   GET  /containers/ID/export?bytes=N   N bytes, chunked (streamed download)
//!   POST /images/load                    swallows a Content-Length or chunked
//!                                        body, answers {"bytes":N} (upload)
//!   GET  /containers/ID/logs?follow=1    chunked, one small chunk now and then
//!                                        one a second, until the client goes away
//!
//! Usage: standin --socket PATH   (prints "ready" once it listens)

#[path = "../../common/sys.rs"]
mod sys;

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use sys::{Epoll, EPOLLIN, EPOLLOUT};

/// Size of the pattern that downloads repeat and of each full chunk.
const BLOCK: usize = 256 * 1024;
/// Most bytes written to one connection per readiness event, for fairness.
const WRITE_BUDGET: usize = 8 << 20;
const LISTENER: u64 = u64::MAX;

const PING_HEAD: &str = "HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\n\
Cache-Control: no-cache, no-store, must-revalidate\r\nContent-Type: text/plain; charset=utf-8\r\n\
Docker-Experimental: false\r\nOstype: linux\r\nPragma: no-cache\r\nServer: Docker/24.0.7 (linux)\r\n";

fn containers_json() -> String {
    let mut items = Vec::new();
    for (i, name) in ["web", "db"].iter().enumerate() {
        items.push(format!(
            concat!(
                r#"{{"Id":"{id}","Names":["/bench-{name}"],"Image":"dmbench/busybox","#,
                r#""ImageID":"sha256:{img}","Command":"sleep 3600","Created":170000000{i},"#,
                r#""Ports":[],"Labels":{{"com.example.bench":"{name}"}},"State":"running","#,
                r#""Status":"Up 2 hours","HostConfig":{{"NetworkMode":"none"}},"#,
                r#""NetworkSettings":{{"Networks":{{"none":{{"NetworkID":"{net}","#,
                r#""EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0}}}}}},"Mounts":[]}}"#
            ),
            id = format!("{:064x}", 0xdead_beef_u64 + i as u64),
            img = format!("{:064x}", 0xbeef_u64 + i as u64),
            net = format!("{:064x}", 0xcafe_u64 + i as u64),
            name = name,
            i = i,
        ));
    }
    format!("[{}]", items.join(","))
}

/// What the request body still needs.
enum Body {
    None,
    Length(u64),
    Chunked(ChunkState),
}

#[derive(Clone, Copy, PartialEq)]
enum ChunkState {
    Size,
    SizeExt,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    Trailer { empty_line: bool },
    Done,
}

/// A streamed response body after the fixed bytes in `out`.
enum Gen {
    None,
    Raw { left: u64 },
    Chunked { left: u64, off: usize },
    Follow,
}

struct Conn {
    stream: UnixStream,
    head: Vec<u8>,
    body: Body,
    /// Bytes of the upload body counted so far, when the request is an upload.
    upload: Option<u64>,
    out: Vec<u8>,
    out_off: usize,
    gen: Gen,
    close_after: bool,
    /// The request whose body is being read closes the connection.
    pending_close: bool,
    interest: u32,
    dead: bool,
}

struct Server {
    pattern: Vec<u8>,
    full_chunk: Vec<u8>,
    containers: String,
    scratch: Vec<u8>,
}

fn parse_query_bytes(target: &str) -> Option<u64> {
    let q = target.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix("bytes="))
        .and_then(|v| v.parse().ok())
}

impl Server {
    /// Parses one complete head and queues the reply or sets up body reading.
    fn on_head(&self, c: &mut Conn, head: &[u8]) -> Result<(), &'static str> {
        let text = std::str::from_utf8(head).map_err(|_| "head not utf-8")?;
        let mut lines = text.split("\r\n");
        let request_line = lines.next().ok_or("empty head")?;
        let mut parts = request_line.split(' ');
        let method = parts.next().ok_or("no method")?;
        let target = parts.next().ok_or("no target")?;
        let version = parts.next().ok_or("no version")?;
        let mut keep_alive = version == "HTTP/1.1";
        let mut length = None;
        let mut chunked = false;
        let mut expect_continue = false;
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line.split_once(':').ok_or("bad header")?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<u64>().map_err(|_| "bad content-length")?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            } else if name.eq_ignore_ascii_case("expect") {
                expect_continue = value.eq_ignore_ascii_case("100-continue");
            }
        }
        c.body = if chunked {
            Body::Chunked(ChunkState::Size)
        } else {
            match length {
                Some(n) if n > 0 => Body::Length(n),
                _ => Body::None,
            }
        };
        let path = target.split('?').next().unwrap_or("");
        // Strip a /v1.43 style version prefix.
        let path = match path.strip_prefix("/v") {
            Some(rest) if rest.starts_with(|ch: char| ch.is_ascii_digit()) => {
                rest.find('/').map(|i| &rest[i..]).unwrap_or("/")
            }
            _ => path,
        };
        let conn_hdr = if keep_alive { "" } else { "Connection: close\r\n" };
        let segs: Vec<&str> = path.split('/').collect();
        // ["", "containers", ID, "archive"] and the like.
        let container_op = match segs.as_slice() {
            ["", "containers", id, op] if !id.is_empty() && *id != "json" => *op,
            _ => "",
        };
        if method == "POST" && path == "/images/load" {
            if expect_continue {
                c.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            c.upload = Some(0);
            c.pending_close = !keep_alive;
            if matches!(c.body, Body::None) {
                self.finish_upload(c);
            }
            return Ok(());
        }
        c.pending_close = !keep_alive;
        match (method, path) {
            ("GET" | "HEAD", "/_ping") => {
                let _ = write!(c.out, "{PING_HEAD}{conn_hdr}Content-Length: 2\r\n\r\n");
                if method == "GET" {
                    c.out.extend_from_slice(b"OK");
                }
            }
            ("GET", "/containers/json") => {
                let _ = write!(
                    c.out,
                    "HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Type: application/json\r\n\
                     Docker-Experimental: false\r\nOstype: linux\r\nServer: Docker/24.0.7 (linux)\r\n\
                     {conn_hdr}Content-Length: {}\r\n\r\n{}",
                    self.containers.len(),
                    self.containers
                );
            }
            ("GET", _) if container_op == "archive" => {
                let n = parse_query_bytes(target).ok_or("archive needs bytes=N")?;
                let _ = write!(
                    c.out,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n\
                     {conn_hdr}Content-Length: {n}\r\n\r\n"
                );
                c.gen = Gen::Raw { left: n };
            }
            ("GET", _) if container_op == "export" => {
                let n = parse_query_bytes(target).ok_or("export needs bytes=N")?;
                let _ = write!(
                    c.out,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n\
                     {conn_hdr}Transfer-Encoding: chunked\r\n\r\n"
                );
                c.gen = Gen::Chunked { left: n, off: 0 };
            }
            ("GET", _) if container_op == "logs" => {
                let _ = write!(
                    c.out,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\
                     {conn_hdr}Transfer-Encoding: chunked\r\n\r\n"
                );
                follow_chunk(&mut c.out);
                c.gen = Gen::Follow;
            }
            _ => {
                let body = r#"{"message":"page not found"}"#;
                let _ = write!(
                    c.out,
                    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
                     {conn_hdr}Content-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        }
        if matches!(c.body, Body::None) && !keep_alive {
            c.close_after = true;
        }
        Ok(())
    }

    fn finish_upload(&self, c: &mut Conn) {
        let n = c.upload.take().unwrap_or(0);
        let body = format!("{{\"bytes\":{n}}}");
        let conn_hdr = if c.pending_close {
            "Connection: close\r\n"
        } else {
            ""
        };
        let _ = write!(
            c.out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{conn_hdr}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
    }

    /// Feeds received bytes to the connection's parser.
    fn consume(&self, c: &mut Conn, mut data: &[u8]) -> Result<(), &'static str> {
        while !data.is_empty() {
            match c.body {
                Body::None => {
                    if c.close_after || !matches!(c.gen, Gen::None) {
                        // Pipelined bytes behind a streamed or final reply: keep
                        // them for later.
                        c.head.extend_from_slice(data);
                        return Ok(());
                    }
                    let start = c.head.len().saturating_sub(3);
                    c.head.extend_from_slice(data);
                    data = &[];
                    if let Some(pos) = find(&c.head[start..], b"\r\n\r\n") {
                        let end = start + pos + 4;
                        let head = std::mem::take(&mut c.head);
                        self.on_head(c, &head[..end])?;
                        let rest = &head[end..];
                        if !rest.is_empty() {
                            let rest = rest.to_vec();
                            self.consume(c, &rest)?;
                        }
                        // Keep the allocation for the next head.
                        if c.head.capacity() == 0 {
                            c.head = Vec::with_capacity(1024);
                        }
                    } else if c.head.len() > 64 * 1024 {
                        return Err("head too large");
                    }
                }
                Body::Length(left) => {
                    let n = (left as usize).min(data.len());
                    if let Some(u) = c.upload.as_mut() {
                        *u += n as u64;
                    }
                    data = &data[n..];
                    if left - n as u64 == 0 {
                        self.body_done(c);
                    } else {
                        c.body = Body::Length(left - n as u64);
                    }
                }
                Body::Chunked(_) => {
                    let used = self.chunked(c, data)?;
                    data = &data[used..];
                }
            }
        }
        Ok(())
    }

    fn body_done(&self, c: &mut Conn) {
        c.body = Body::None;
        if c.upload.is_some() {
            self.finish_upload(c);
        }
        if c.pending_close {
            c.close_after = true;
        }
    }

    /// Decodes chunked framing; returns how many bytes it used.
    fn chunked(&self, c: &mut Conn, data: &[u8]) -> Result<usize, &'static str> {
        let Body::Chunked(mut st) = c.body else {
            return Ok(0);
        };
        let mut i = 0;
        // The hex digits of a chunk size gather in `c.head`, which is unused
        // while a body is read, so a size split across reads still parses.
        while i < data.len() {
            match st {
                ChunkState::Size => {
                    let b = data[i];
                    if b.is_ascii_hexdigit() {
                        c.head.push(b);
                        i += 1;
                    } else if b == b';' {
                        st = ChunkState::SizeExt;
                        i += 1;
                    } else if b == b'\r' {
                        st = ChunkState::SizeLf;
                        i += 1;
                    } else {
                        return Err("bad chunk size");
                    }
                }
                ChunkState::SizeExt => {
                    if data[i] == b'\r' {
                        st = ChunkState::SizeLf;
                    }
                    i += 1;
                }
                ChunkState::SizeLf => {
                    if data[i] != b'\n' {
                        return Err("bad chunk size line");
                    }
                    i += 1;
                    let digits = std::str::from_utf8(&c.head).map_err(|_| "bad chunk size")?;
                    let size = u64::from_str_radix(digits, 16).map_err(|_| "bad chunk size")?;
                    c.head.clear();
                    st = if size == 0 {
                        ChunkState::Trailer { empty_line: true }
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let n = (left as usize).min(data.len() - i);
                    if let Some(u) = c.upload.as_mut() {
                        *u += n as u64;
                    }
                    i += n;
                    st = if left - n as u64 == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(left - n as u64)
                    };
                }
                ChunkState::DataCr => {
                    if data[i] != b'\r' {
                        return Err("chunk data not followed by CRLF");
                    }
                    i += 1;
                    st = ChunkState::DataLf;
                }
                ChunkState::DataLf => {
                    if data[i] != b'\n' {
                        return Err("chunk data not followed by CRLF");
                    }
                    i += 1;
                    st = ChunkState::Size;
                }
                ChunkState::Trailer { empty_line } => {
                    let b = data[i];
                    i += 1;
                    if b == b'\n' {
                        if empty_line {
                            st = ChunkState::Done;
                            break;
                        }
                        st = ChunkState::Trailer { empty_line: true };
                    } else if b != b'\r' {
                        st = ChunkState::Trailer { empty_line: false };
                    }
                }
                ChunkState::Done => break,
            }
        }
        if st == ChunkState::Done {
            self.body_done(c);
        } else {
            c.body = Body::Chunked(st);
        }
        Ok(i)
    }

    /// Writes what the connection has to send; Ok(true) while more is left.
    fn flush(&self, c: &mut Conn) -> io::Result<bool> {
        let mut budget = WRITE_BUDGET;
        loop {
            if c.out_off < c.out.len() {
                let n = match c.stream.write(&c.out[c.out_off..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                c.out_off += n;
                if c.out_off == c.out.len() {
                    c.out.clear();
                    c.out_off = 0;
                }
                continue;
            }
            if budget == 0 {
                return Ok(true);
            }
            let wrote = match &mut c.gen {
                Gen::None | Gen::Follow => return Ok(false),
                Gen::Raw { left } => {
                    if *left == 0 {
                        c.gen = Gen::None;
                        continue;
                    }
                    let want = (*left).min(BLOCK as u64) as usize;
                    match c.stream.write(&self.pattern[..want]) {
                        Ok(n) => {
                            *left -= n as u64;
                            n
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
                Gen::Chunked { left, off } => {
                    if *left < BLOCK as u64 {
                        // The last, short chunk and the terminator.
                        if *left > 0 {
                            let _ = write!(c.out, "{:x}\r\n", *left);
                            c.out.extend_from_slice(&self.pattern[..*left as usize]);
                            c.out.extend_from_slice(b"\r\n");
                        }
                        c.out.extend_from_slice(b"0\r\n\r\n");
                        c.gen = Gen::None;
                        continue;
                    }
                    match c.stream.write(&self.full_chunk[*off..]) {
                        Ok(n) => {
                            *off += n;
                            if *off == self.full_chunk.len() {
                                *off = 0;
                                *left -= BLOCK as u64;
                            }
                            n
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            budget = budget.saturating_sub(wrote);
        }
    }
}

fn follow_chunk(out: &mut Vec<u8>) {
    let line = br#"{"status":"tick","id":"0000000000000000000000000000000000000000000000000000000000000000","from":"dmbench/busybox","Type":"container"}"#;
    let _ = write!(out, "{:x}\r\n", line.len() + 1);
    out.extend_from_slice(line);
    out.extend_from_slice(b"\n\r\n");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let socket = match args.iter().position(|a| a == "--socket") {
        Some(i) if i + 1 < args.len() => args[i + 1].clone(),
        _ => {
            eprintln!("usage: standin --socket PATH");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&socket) {
        eprintln!("standin: {e}");
        std::process::exit(1);
    }
}

fn run(socket: &str) -> io::Result<()> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    listener.set_nonblocking(true)?;
    sys::set_backlog(listener.as_raw_fd(), 4096)?;
    let pattern: Vec<u8> = (0..BLOCK).map(|i| b'a' + (i % 26) as u8).collect();
    let mut full_chunk = format!("{BLOCK:x}\r\n").into_bytes();
    full_chunk.extend_from_slice(&pattern);
    full_chunk.extend_from_slice(b"\r\n");
    let mut srv = Server {
        pattern,
        full_chunk,
        containers: containers_json(),
        scratch: vec![0; BLOCK],
    };
    let mut ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), EPOLLIN, LISTENER)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut next_tick = Instant::now() + Duration::from_secs(1);
    println!("ready");
    io::stdout().flush()?;
    let mut ready: Vec<(u64, u32)> = Vec::with_capacity(1024);
    loop {
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + Duration::from_secs(1);
            for i in 0..conns.len() {
                let Some(c) = conns[i].as_mut() else { continue };
                if matches!(c.gen, Gen::Follow) {
                    follow_chunk(&mut c.out);
                    service(&srv, &ep, c, i, false);
                    if c.dead {
                        drop_conn(&ep, &mut conns, &mut free, i);
                    }
                }
            }
        }
        let timeout = next_tick
            .saturating_duration_since(Instant::now())
            .as_millis() as i32
            + 1;
        ready.clear();
        ready.extend(ep.wait(timeout)?.iter().map(|e| (e.token(), e.flags())));
        for &(token, flags) in &ready {
            if token == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(true)?;
                            let idx = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            ep.add(stream.as_raw_fd(), EPOLLIN, idx as u64)?;
                            conns[idx] = Some(Conn {
                                stream,
                                head: Vec::with_capacity(1024),
                                body: Body::None,
                                upload: None,
                                out: Vec::new(),
                                out_off: 0,
                                gen: Gen::None,
                                close_after: false,
                                pending_close: false,
                                interest: EPOLLIN,
                                dead: false,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            eprintln!("standin: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let idx = token as usize;
            let Some(c) = conns.get_mut(idx).and_then(|c| c.as_mut()) else {
                continue;
            };
            let readable = flags & (EPOLLIN | sys::EPOLLHUP | sys::EPOLLERR) != 0;
            service_read(&mut srv, &ep, c, idx, readable);
            if c.dead {
                drop_conn(&ep, &mut conns, &mut free, idx);
            }
        }
    }
}

fn service_read(srv: &mut Server, ep: &Epoll, c: &mut Conn, idx: usize, readable: bool) {
    if readable && c.interest & EPOLLIN != 0 {
        let mut scratch = std::mem::take(&mut srv.scratch);
        loop {
            match c.stream.read(&mut scratch) {
                Ok(0) => {
                    // The client is done sending: finish what is owed, then close.
                    c.close_after = true;
                    if c.out_off == c.out.len() && matches!(c.gen, Gen::None | Gen::Follow) {
                        c.dead = true;
                    }
                    break;
                }
                Ok(n) => {
                    if let Err(why) = srv.consume(c, &scratch[..n]) {
                        eprintln!("standin: {why}");
                        c.dead = true;
                        break;
                    }
                    if n < scratch.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.dead = true;
                    break;
                }
            }
        }
        srv.scratch = scratch;
        if c.dead {
            return;
        }
    }
    service(srv, ep, c, idx, true);
}

/// Sends pending output, resumes pipelined requests and sets the interest.
fn service(srv: &Server, ep: &Epoll, c: &mut Conn, idx: usize, _from_read: bool) {
    loop {
        match srv.flush(c) {
            Ok(true) => break,
            Ok(false) => {
                // Reply complete (or a follow stream idle).
                if c.close_after {
                    c.dead = true;
                    return;
                }
                if matches!(c.gen, Gen::None) && !c.head.is_empty() && matches!(c.body, Body::None)
                {
                    // Pipelined requests were parked behind a streamed reply.
                    let parked = std::mem::take(&mut c.head);
                    if let Err(why) = srv.consume(c, &parked) {
                        eprintln!("standin: {why}");
                        c.dead = true;
                        return;
                    }
                    if !c.out.is_empty() || !matches!(c.gen, Gen::None) {
                        continue;
                    }
                }
                break;
            }
            Err(_) => {
                c.dead = true;
                return;
            }
        }
    }
    let pending = c.out_off < c.out.len() || matches!(c.gen, Gen::Raw { .. } | Gen::Chunked { .. });
    // Stop reading while a long reply streams out, so pipelined bytes wait.
    let want = if pending || c.close_after { EPOLLOUT } else { EPOLLIN };
    let want = if matches!(c.gen, Gen::Follow) {
        EPOLLIN | if pending { EPOLLOUT } else { 0 }
    } else {
        want
    };
    if want != c.interest {
        c.interest = want;
        if ep.modify(c.stream.as_raw_fd(), want, idx as u64).is_err() {
            c.dead = true;
        }
    }
}

fn drop_conn(ep: &Epoll, conns: &mut [Option<Conn>], free: &mut Vec<usize>, idx: usize) {
    if let Some(c) = conns[idx].take() {
        let _ = ep.delete(c.stream.as_raw_fd());
        free.push(idx);
    }
}

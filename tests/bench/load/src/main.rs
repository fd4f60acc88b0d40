//! benchload: the load tool of the dockermand benchmarks. It speaks HTTP/1.1
//! over TCP, TLS or a unix socket, so "direct" (a client on dockerd's socket)
//! and every proxy are measured by the same code. One thread, epoll; std and
//! rustls (for TLS) only.
//!
//!   benchload rate --target T --path P --conns C --duration S [--warmup S] [--close]
//!       closed-loop load: C connections, each sends the next request as soon
//!       as the previous reply is complete. --close sends `Connection: close`
//!       and opens a new connection per request (latency then includes the
//!       connect). Prints JSON: requests, errors, rps, p50/p90/p99 in µs.
//!       With --requests N it stops once N replies are complete (no new
//!       request is sent after the Nth; --duration is then a time limit).
//!   benchload get --target T --path P [--expect N]
//!       one GET; counts the body bytes (Content-Length, chunked or until
//!       EOF), discarding them. Prints JSON: status, bytes, secs, mib_s.
//!   benchload post --target T --path P (--bytes N | --file F) [--chunked]
//!       one POST with a generated or file body. Prints JSON with the reply.
//!   benchload hold --target T --path P --conns N [--stream]
//!       opens N connections (at most 64 waiting for their reply at a time),
//!       each makes one request (with --stream, waits for the head and the
//!       first body bytes only), prints "ready", then keeps them open,
//!       draining, until a line or EOF arrives on standard input.
//!
//! T is tcp:HOST:PORT or unix:/path. Every command takes `--header "Name: value"`
//! (repeatable): extra header lines sent with every request, e.g. an
//! `Authorization: Bearer ...` for a gateway that wants a token.
//!
//! `--tls CA.pem` speaks TLS on tcp targets, verifying the server's
//! certificate against CA.pem for the name `--tls-name` (default: the
//! target's host). The client offers one protocol, suite and group only
//! (TLS 1.3, TLS_AES_128_GCM_SHA256, X25519), so every server negotiates the
//! same; resumption is off, so every new connection is a full handshake.
//! Results then carry `"tls":"SUITE/GROUP"`, what was negotiated. Handshakes
//! do not block the event loops of `rate` and `hold`: the request is queued
//! in rustls and goes out once the handshake is done.

#[path = "../../common/sys.rs"]
mod sys;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sys::{Epoll, EPOLLIN};

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<Tls>),
}

/// A TLS client connection over TCP. Reads and writes move records as
/// they go; on a non-blocking socket a read that needs more records than
/// have arrived fails with `WouldBlock`, as a plain socket's would.
struct Tls {
    conn: rustls::ClientConnection,
    sock: TcpStream,
}

/// The client configuration, set once from `--tls`.
static TLS: OnceLock<(Arc<rustls::ClientConfig>, Option<String>)> = OnceLock::new();

fn tls_config(ca: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::crypto::ring::{cipher_suite, default_provider, kx_group};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
        roots
            .add(cert.map_err(|e| format!("{ca}: {e}"))?)
            .map_err(|e| format!("{ca}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{ca}: no certificate"));
    }
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: vec![cipher_suite::TLS13_AES_128_GCM_SHA256],
        kx_groups: vec![kx_group::X25519],
        ..default_provider()
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

impl Tls {
    fn new(sock: TcpStream, host: &str) -> io::Result<Tls> {
        let (config, name) = TLS.get().expect("TLS configured");
        let name = name.clone().unwrap_or_else(|| host.to_string());
        let name = rustls::pki_types::ServerName::try_from(name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        let mut tls = Tls { conn, sock };
        tls.flush()?; // the ClientHello
        Ok(tls)
    }

    /// Sends every record rustls has queued (a non-blocking socket that is
    /// full is waited for: only bulk uploads fill one, and they block).
    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Takes in the records that have arrived. Ok(false) at the end of the stream.
    fn receive(&mut self) -> io::Result<bool> {
        let n = loop {
            match self.conn.read_tls(&mut self.sock) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        self.conn
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // The handshake's replies, and any request queued behind it.
        self.flush()?;
        Ok(n > 0)
    }

    /// Runs the handshake to its end (blocking sockets).
    fn handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            if !self.receive()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during the TLS handshake",
                ));
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match io::Read::read(&mut self.conn.reader(), buf) {
                // Ok(0): close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if !self.receive()? {
                // The end without close_notify; the callers check lengths.
                return Ok(0);
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = io::Write::write(&mut self.conn.writer(), buf)?;
        self.flush()?;
        if n == 0 && !buf.is_empty() {
            // rustls's buffer is full of plaintext waiting for the handshake.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// "SUITE/GROUP" once the handshake is done.
    fn negotiated(&self) -> Option<String> {
        let suite = self.conn.negotiated_cipher_suite()?;
        let group = self
            .conn
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()))
            .unwrap_or_else(|| "?".into());
        Some(format!("{:?}/{group}", suite.suite()))
    }
}

impl Stream {
    fn connect(target: &str) -> io::Result<Stream> {
        if let Some(path) = target.strip_prefix("unix:") {
            Ok(Stream::Unix(UnixStream::connect(path)?))
        } else if let Some(addr) = target.strip_prefix("tcp:") {
            let s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            if TLS.get().is_some() {
                let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                return Ok(Stream::Tls(Box::new(Tls::new(s, host)?)));
            }
            Ok(Stream::Tcp(s))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "target must be tcp:HOST:PORT or unix:/path",
            ))
        }
    }
    /// Connects and, over TLS, completes the handshake (blocking commands).
    fn connect_blocking(target: &str) -> io::Result<Stream> {
        let mut s = Stream::connect(target)?;
        if let Stream::Tls(t) = &mut s {
            t.handshake()?;
        }
        Ok(s)
    }
    fn set_nonblocking(&self, nb: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(nb),
            Stream::Unix(s) => s.set_nonblocking(nb),
            Stream::Tls(t) => t.sock.set_nonblocking(nb),
        }
    }
    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tls(t) => t.sock.as_raw_fd(),
        }
    }
    /// A short read says the socket is empty, except over TLS, where
    /// rustls may hold decrypted bytes past what one read returned.
    fn short_read_drains(&self) -> bool {
        !matches!(self, Stream::Tls(_))
    }
    fn negotiated(&self) -> Option<String> {
        match self {
            Stream::Tls(t) => t.negotiated(),
            _ => None,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The `"tls"` member of a result: what was negotiated, if TLS was spoken.
fn tls_json(negotiated: Option<String>) -> String {
    match negotiated {
        Some(n) => format!(",\"tls\":{}", json_str(&n)),
        None => String::new(),
    }
}

struct Args(Vec<String>);

impl Args {
    fn get(&self, name: &str) -> Option<&str> {
        let i = self.0.iter().position(|a| a == name)?;
        self.0.get(i + 1).map(|s| s.as_str())
    }
    fn req(&self, name: &str) -> &str {
        self.get(name).unwrap_or_else(|| die(&format!("missing {name}")))
    }
    fn num<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> T {
        match self.get(name) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| die(&format!("bad value for {name}: {v}"))),
            None => default.unwrap_or_else(|| die(&format!("missing {name}"))),
        }
    }
    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    /// Every value of a repeatable option.
    fn all(&self, name: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut it = self.0.iter();
        while let Some(a) = it.next() {
            if a == name {
                if let Some(v) = it.next() {
                    out.push(v.as_str());
                }
            }
        }
        out
    }
}

/// The `--header` lines, each ending in CRLF, sent with every request.
static EXTRA_HEADERS: OnceLock<String> = OnceLock::new();

fn extra_headers() -> &'static str {
    EXTRA_HEADERS.get().map(|s| s.as_str()).unwrap_or("")
}

fn die(msg: &str) -> ! {
    eprintln!("benchload: {msg}");
    std::process::exit(2);
}

fn main() {
    let args = Args(std::env::args().skip(1).collect());
    let mut headers = String::new();
    for h in args.all("--header") {
        if !h.contains(':') || h.contains('\r') || h.contains('\n') {
            die(&format!("bad --header {h:?}: want \"Name: value\" on one line"));
        }
        headers.push_str(h);
        headers.push_str("\r\n");
    }
    let _ = EXTRA_HEADERS.set(headers);
    if let Some(ca) = args.get("--tls") {
        let config = tls_config(ca).unwrap_or_else(|e| die(&format!("--tls: {e}")));
        let _ = TLS.set((config, args.get("--tls-name").map(str::to_string)));
    }
    let result = match args.0.first().map(|s| s.as_str()) {
        Some("rate") => rate(&args),
        Some("get") => get(&args),
        Some("post") => post(&args),
        Some("hold") => hold(&args),
        _ => die("usage: benchload rate|get|post|hold --target T --path P ..."),
    };
    if let Err(e) = result {
        eprintln!("benchload: {e}");
        std::process::exit(1);
    }
}

fn request(path: &str, close: bool) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: dmbench/1\r\n{}{}\r\n",
        extra_headers(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes()
}

/// A parsed response head.
struct Head {
    status: u16,
    len: usize,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a head if `buf` holds a complete one.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            return Err("response head too large".into());
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "response head not utf-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut head = Head {
        status,
        len: end + 4,
        content_length: None,
        chunked: false,
        close: version == "HTTP/1.0",
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(value.parse().map_err(|_| "bad content-length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            head.close = v.contains("close") || (head.close && !v.contains("keep-alive"));
        }
    }
    Ok(Some(head))
}

/// Streaming decoder of a chunked body; counts payload bytes.
#[derive(Default)]
struct Dechunk {
    state: u8, // 0 size, 1 ext, 2 size LF, 3 data, 4 data CR, 5 data LF, 6 trailer, 7 done
    size: u64,
    digits: u32,
    left: u64,
    line_empty: bool,
    payload: u64,
}

impl Dechunk {
    /// Feeds bytes; returns how many were used (all unless the body ended).
    fn feed(&mut self, data: &[u8]) -> Result<usize, String> {
        let mut i = 0;
        while i < data.len() && self.state != 7 {
            let b = data[i];
            match self.state {
                0 => {
                    if let Some(d) = (b as char).to_digit(16) {
                        self.size = self.size.checked_mul(16).ok_or("chunk size overflow")? + d as u64;
                        self.digits += 1;
                    } else if b == b';' || b == b' ' {
                        self.state = 1;
                    } else if b == b'\r' {
                        self.state = 2;
                    } else {
                        return Err(format!("bad chunk size byte {b:#x}"));
                    }
                    i += 1;
                }
                1 => {
                    if b == b'\r' {
                        self.state = 2;
                    }
                    i += 1;
                }
                2 => {
                    if b != b'\n' || self.digits == 0 {
                        return Err("bad chunk size line".into());
                    }
                    i += 1;
                    if self.size == 0 {
                        self.state = 6;
                        self.line_empty = true;
                    } else {
                        self.left = self.size;
                        self.state = 3;
                    }
                    self.size = 0;
                    self.digits = 0;
                }
                3 => {
                    let n = (self.left as usize).min(data.len() - i);
                    self.left -= n as u64;
                    self.payload += n as u64;
                    i += n;
                    if self.left == 0 {
                        self.state = 4;
                    }
                }
                4 => {
                    if b != b'\r' {
                        return Err("chunk without CRLF".into());
                    }
                    self.state = 5;
                    i += 1;
                }
                5 => {
                    if b != b'\n' {
                        return Err("chunk without CRLF".into());
                    }
                    self.state = 0;
                    i += 1;
                }
                6 => {
                    i += 1;
                    if b == b'\n' {
                        if self.line_empty {
                            self.state = 7;
                        }
                        self.line_empty = true;
                    } else if b != b'\r' {
                        self.line_empty = false;
                    }
                }
                _ => unreachable!(),
            }
        }
        Ok(i)
    }
    fn done(&self) -> bool {
        self.state == 7
    }
}

// ---------------------------------------------------------------- rate

struct Client {
    stream: Option<Stream>,
    buf: Vec<u8>,
    head: Option<Head>,
    start: Instant,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

fn rate(args: &Args) -> io::Result<()> {
    let target = args.req("--target").to_string();
    let path = args.req("--path");
    let conns: usize = args.num("--conns", Some(1));
    let duration: f64 = args.num("--duration", Some(2.0));
    let warmup: f64 = args.num("--warmup", Some(0.2));
    let close = args.flag("--close");
    // 0: no limit, the duration alone ends the run.
    let limit: u64 = args.num("--requests", Some(0));
    let req = request(path, close);
    let mut ep = Epoll::new()?;
    let mut clients: Vec<Client> = Vec::with_capacity(conns);
    let t0 = Instant::now();
    let measure_from = t0 + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(duration);
    let mut lat: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut errors = 0u64;
    let mut last_error = String::new();
    let mut reconnects = 0u64;
    let mut total = 0u64;
    // Requests sent (for --requests: none beyond the limit).
    let mut sent = 0u64;
    let mut negotiated = None;

    let start_request = |c: &mut Client, ep: &Epoll, idx: usize, fresh: bool| -> io::Result<()> {
        c.start = Instant::now();
        if fresh || c.stream.is_none() {
            if let Some(old) = c.stream.take() {
                let _ = ep.delete(old.fd());
            }
            let s = Stream::connect(&target)?;
            s.set_nonblocking(true)?;
            ep.add(s.fd(), EPOLLIN, idx as u64)?;
            c.stream = Some(s);
        }
        c.buf.clear();
        c.head = None;
        let s = c.stream.as_mut().unwrap();
        let mut off = 0;
        while off < req.len() {
            match s.write(&req[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::yield_now();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };

    for i in 0..conns {
        let mut c = Client {
            stream: None,
            buf: Vec::with_capacity(4096),
            head: None,
            start: Instant::now(),
        };
        if limit == 0 || sent < limit {
            start_request(&mut c, &ep, i, true)?;
            sent += 1;
        }
        clients.push(c);
    }
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut ready: Vec<u64> = Vec::with_capacity(1024);
    let mut measured_start = None;
    'outer: loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let timeout = (end - now).as_millis() as i32 + 1;
        ready.clear();
        ready.extend(ep.wait(timeout)?.iter().map(|e| e.token()));
        for &tok in &ready {
            let idx = tok as usize;
            let c = &mut clients[idx];
            let Some(s) = c.stream.as_mut() else { continue };
            // Read what is there.
            let mut failed: Option<String> = None;
            let mut complete = false;
            loop {
                match s.read(&mut rbuf) {
                    Ok(0) => {
                        failed = Some("connection closed before the reply was complete".into());
                        break;
                    }
                    Ok(n) => {
                        c.buf.extend_from_slice(&rbuf[..n]);
                        if n < rbuf.len() && s.short_read_drains() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        failed = Some(format!("read: {e}"));
                        break;
                    }
                }
            }
            if c.head.is_none() {
                match parse_head(&c.buf) {
                    Ok(h) => c.head = h,
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(h) = &c.head {
                let body = (c.buf.len() - h.len) as u64;
                match h.content_length {
                    Some(n) if body >= n => {
                        if body > n {
                            failed = Some("more bytes than Content-Length".into());
                        } else if h.status != 200 {
                            failed = Some(format!("status {}", h.status));
                        } else {
                            complete = true;
                        }
                    }
                    Some(_) => {}
                    None => failed = Some("reply without Content-Length".into()),
                }
            }
            let done_at = Instant::now();
            if complete {
                // A clean keep-alive reply is all we need to send the next request.
                failed = None;
            }
            if let Some(why) = failed {
                if done_at >= measure_from {
                    errors += 1;
                }
                last_error = why;
                reconnects += 1;
                if done_at >= end {
                    break 'outer;
                }
                if let Err(e) = start_request(c, &ep, idx, true) {
                    errors += 1;
                    last_error = format!("connect: {e}");
                    std::thread::sleep(Duration::from_millis(1));
                    start_request(c, &ep, idx, true)?;
                }
                continue;
            }
            if complete {
                total += 1;
                if limit > 0 && total >= limit {
                    if done_at >= measure_from {
                        lat.push(done_at.duration_since(c.start).as_nanos() as u64);
                    }
                    break 'outer;
                }
                if negotiated.is_none() {
                    negotiated = c.stream.as_ref().and_then(Stream::negotiated);
                }
                if done_at >= measure_from && done_at < end {
                    if measured_start.is_none() {
                        measured_start = Some(done_at);
                    }
                    lat.push(done_at.duration_since(c.start).as_nanos() as u64);
                }
                let fresh = close || c.head.as_ref().map(|h| h.close).unwrap_or(false);
                if fresh {
                    if !close {
                        reconnects += 1;
                    }
                    if let Some(old) = c.stream.take() {
                        let _ = ep.delete(old.fd());
                    }
                }
                if limit > 0 && sent >= limit {
                    // This connection's share is done; the others finish theirs.
                    if let Some(old) = c.stream.take() {
                        let _ = ep.delete(old.fd());
                    }
                    continue;
                }
                start_request(c, &ep, idx, fresh)?;
                sent += 1;
            }
        }
    }
    let secs = if limit > 0 {
        measured_start.map_or(duration, |s| s.elapsed().as_secs_f64().max(1e-6))
    } else {
        duration
    };
    lat.sort_unstable();
    let n = lat.len();
    let mean = if n > 0 {
        lat.iter().sum::<u64>() as f64 / n as f64 / 1000.0
    } else {
        0.0
    };
    println!(
        "{{\"requests\":{n},\"total_requests\":{total},\"errors\":{errors},\"reconnects\":{reconnects},\"secs\":{secs},\
         \"rps\":{:.1},\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\
         \"mean_us\":{mean:.1},\"last_error\":{}{}}}",
        n as f64 / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        json_str(&last_error),
        tls_json(negotiated)
    );
    Ok(())
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------- get / post

/// Reads a reply head from a blocking stream; returns it and the body bytes
/// that came with it.
fn read_head(s: &mut Stream, buf: &mut [u8]) -> io::Result<(Head, Vec<u8>)> {
    let mut acc = Vec::new();
    loop {
        let n = s.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the reply head",
            ));
        }
        acc.extend_from_slice(&buf[..n]);
        match parse_head(&acc) {
            Ok(Some(h)) => {
                let rest = acc[h.len..].to_vec();
                return Ok((h, rest));
            }
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// Reads a whole body, passing each piece to `sink`; returns its length.
fn read_body(
    s: &mut Stream,
    h: &Head,
    first: &[u8],
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]),
) -> io::Result<u64> {
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    if h.chunked {
        let mut d = Dechunk::default();
        let used = d.feed(first).map_err(bad)?;
        sink(&first[..used]);
        while !d.done() {
            let n = s.read(buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("chunked body cut after {} bytes", d.payload),
                ));
            }
            let used = d.feed(&buf[..n]).map_err(bad)?;
            sink(&buf[..used]);
        }
        Ok(d.payload)
    } else if let Some(len) = h.content_length {
        let mut got = first.len() as u64;
        sink(first);
        while got < len {
            let want = ((len - got) as usize).min(buf.len());
            let n = s.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("body cut after {got} of {len} bytes"),
                ));
            }
            sink(&buf[..n]);
            got += n as u64;
        }
        if got > len {
            return Err(bad(format!("{got} bytes for Content-Length {len}")));
        }
        Ok(got)
    } else {
        let mut got = first.len() as u64;
        sink(first);
        loop {
            let n = s.read(buf)?;
            if n == 0 {
                return Ok(got);
            }
            sink(&buf[..n]);
            got += n as u64;
        }
    }
}

fn get(args: &Args) -> io::Result<()> {
    let target = args.req("--target");
    let path = args.req("--path");
    let expect: Option<u64> = args.get("--expect").map(|v| v.parse().unwrap_or_else(|_| die("bad --expect")));
    let mut buf = vec![0u8; 1 << 20];
    let t0 = Instant::now();
    let mut s = Stream::connect_blocking(target)?;
    s.write_all(&request(path, false))?;
    let (h, first) = read_head(&mut s, &mut buf)?;
    let bytes = read_body(&mut s, &h, &first, &mut buf, |_| {})?;
    let secs = t0.elapsed().as_secs_f64();
    let ok = h.status == 200 && expect.map(|e| e == bytes).unwrap_or(true);
    println!(
        "{{\"status\":{},\"bytes\":{bytes},\"secs\":{secs:.6},\"mib_s\":{:.1},\"ok\":{ok}{}}}",
        h.status,
        bytes as f64 / secs / 1048576.0,
        tls_json(s.negotiated())
    );
    if !ok {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("status {} and {bytes} bytes, expected 200 and {expect:?}", h.status),
        ));
    }
    Ok(())
}

fn post(args: &Args) -> io::Result<()> {
    let target = args.req("--target");
    let path = args.req("--path");
    let chunked = args.flag("--chunked");
    let content_type = args.get("--content-type").unwrap_or("application/octet-stream");
    let mut file = match args.get("--file") {
        Some(f) => Some(std::fs::File::open(f)?),
        None => None,
    };
    let total: u64 = match &file {
        Some(f) => f.metadata()?.len(),
        None => args.num("--bytes", None),
    };
    const BLOCK: usize = 256 * 1024;
    let mut block = vec![0u8; BLOCK];
    for (i, b) in block.iter_mut().enumerate() {
        *b = b'a' + (i % 26) as u8;
    }
    let t0 = Instant::now();
    let mut s = Stream::connect_blocking(target)?;
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n".to_string()
    } else {
        format!("Content-Length: {total}\r\n")
    };
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: dmbench/1\r\n\
             {}Content-Type: {content_type}\r\n{framing}\r\n",
            extra_headers()
        )
        .as_bytes(),
    )?;
    let mut sent = 0u64;
    let mut chunk_buf = Vec::with_capacity(BLOCK + 16);
    while sent < total {
        let want = ((total - sent) as usize).min(BLOCK);
        let data: &[u8] = match file.as_mut() {
            Some(f) => {
                let n = f.read(&mut block[..want])?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
                }
                &block[..n]
            }
            None => &block[..want],
        };
        if chunked {
            chunk_buf.clear();
            write!(chunk_buf, "{:x}\r\n", data.len())?;
            chunk_buf.extend_from_slice(data);
            chunk_buf.extend_from_slice(b"\r\n");
            s.write_all(&chunk_buf)?;
        } else {
            s.write_all(data)?;
        }
        sent += data.len() as u64;
    }
    if chunked {
        s.write_all(b"0\r\n\r\n")?;
    }
    let mut buf = vec![0u8; 1 << 16];
    let (h, first) = read_head(&mut s, &mut buf)?;
    let mut body = Vec::new();
    read_body(&mut s, &h, &first, &mut buf, |d| {
        if body.len() < 1 << 20 {
            body.extend_from_slice(d)
        }
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&body);
    println!(
        "{{\"status\":{},\"bytes\":{sent},\"secs\":{secs:.6},\"mib_s\":{:.1},\"reply\":{}{}}}",
        h.status,
        sent as f64 / secs / 1048576.0,
        json_str(&text),
        tls_json(s.negotiated())
    );
    if h.status != 200 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("status {}: {text}", h.status),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- hold

fn hold(args: &Args) -> io::Result<()> {
    let target = args.req("--target");
    let path = args.req("--path");
    let n: usize = args.num("--conns", None);
    let stream_mode = args.flag("--stream");
    let req = request(path, false);
    let mut ep = Epoll::new()?;
    struct Held {
        s: Stream,
        buf: Vec<u8>,
        ready: bool,
        open: bool,
    }
    // Clients arrive a window at a time (each waits for its reply before the
    // window moves on), so the figure is about memory, not accept bursts.
    const WINDOW: usize = 64;
    let mut held: Vec<Held> = Vec::with_capacity(n);
    const STDIN: u64 = u64::MAX;
    let mut nready = 0;
    let mut lost = 0;
    let mut rbuf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut announced = false;
    let mut ready_tokens = Vec::new();
    loop {
        if !announced && nready == n {
            println!("ready {n}");
            io::stdout().flush()?;
            ep.add(0, EPOLLIN, STDIN)?;
            announced = true;
        }
        if !announced && Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("only {nready} of {n} connections got their reply"),
            ));
        }
        while held.len() < n && held.len() - nready < WINDOW {
            let mut s = Stream::connect(target)?;
            s.write_all(&req)?;
            s.set_nonblocking(true)?;
            ep.add(s.fd(), EPOLLIN, held.len() as u64)?;
            held.push(Held {
                s,
                buf: Vec::new(),
                ready: false,
                open: true,
            });
        }
        ready_tokens.clear();
        ready_tokens.extend(ep.wait(1000)?.iter().map(|e| e.token()));
        for &tok in &ready_tokens {
            if tok == STDIN {
                let mut b = [0u8; 64];
                let _ = io::stdin().read(&mut b);
                println!("done lost={lost}");
                return Ok(());
            }
            let h = &mut held[tok as usize];
            if !h.open {
                continue;
            }
            loop {
                match h.s.read(&mut rbuf) {
                    Ok(0) => {
                        h.open = false;
                        let _ = ep.delete(h.s.fd());
                        lost += 1;
                        if !h.ready {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "connection closed before its reply",
                            ));
                        }
                        break;
                    }
                    Ok(k) => {
                        if !h.ready {
                            h.buf.extend_from_slice(&rbuf[..k]);
                            match parse_head(&h.buf) {
                                Ok(Some(head)) => {
                                    if head.status != 200 {
                                        return Err(io::Error::new(
                                            io::ErrorKind::InvalidData,
                                            format!("status {}", head.status),
                                        ));
                                    }
                                    let body = (h.buf.len() - head.len) as u64;
                                    let done = if stream_mode {
                                        body > 0
                                    } else {
                                        head.content_length.map(|l| body >= l).unwrap_or(false)
                                    };
                                    if done {
                                        h.ready = true;
                                        h.buf = Vec::new();
                                        nready += 1;
                                    }
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    return Err(io::Error::new(io::ErrorKind::InvalidData, e))
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        h.open = false;
                        let _ = ep.delete(h.s.fd());
                        lost += 1;
                        eprintln!("benchload: hold: {e}");
                        break;
                    }
                }
            }
        }
    }
}

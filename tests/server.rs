//! `Server` end to end on loopback: the real event loop on a thread, driven
//! by plain blocking clients, in front of a scripted stand-in dockerd on a
//! private unix socket. The stand-in reports every request head, body and
//! tunnelled byte exactly as it arrived, so each test can pin both wires:
//! what the client gets and what dockerd would see.
//!
//! Every gateway here is open (no credentials), as on a loopback listener
//! with no auth configured: these tests are about moving bytes, not access.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use dockermand::config::{Config, ListenAddr};
use dockermand::net::upstream::UpstreamAddr;
use dockermand::server::Server;

/// Safety net for every blocking read and wait: a gateway that stops
/// answering fails the test instead of hanging it. Nothing waits for it to
/// pass; every wait ends on the event it is for.
const PATIENCE: Duration = Duration::from_secs(20);

/// A directory only this test can use, for the stand-in's socket; removed
/// when the test ends.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> PrivateDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "dockermand-server-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        // Left behind by an earlier run whose pid was the same.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .expect("create a private temp dir");
        PrivateDir(path)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the stand-in received on one of its connections, in order.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// A request head through its empty line, verbatim.
    Head(Vec<u8>),
    /// That request's body with its framing, verbatim; empty when none.
    Body(Vec<u8>),
    /// Bytes after a protocol switch, as one read returned them.
    Raw(Vec<u8>),
    /// The gateway shut its sending side after a protocol switch.
    Eof,
    /// The stand-in could not follow the conversation.
    Failed(String),
}

#[derive(Debug)]
struct Event {
    /// Which upstream connection, counted from 0 in accept order.
    conn: usize,
    seen: Seen,
}

/// A request the stand-in has read whole.
struct Request {
    target: String,
}

/// One upstream connection as the stand-in holds it.
struct Wire {
    stream: UnixStream,
    /// Received and not yet taken.
    buf: Vec<u8>,
    conn: usize,
    events: Sender<Event>,
}

impl Wire {
    fn report(&self, seen: Seen) {
        let _ = self.events.send(Event {
            conn: self.conn,
            seen,
        });
    }

    /// Reads once more; false at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        self.buf.drain(..n).collect()
    }

    /// The bytes through the next `delimiter`; `None` at an EOF with
    /// nothing pending (the gateway is done with this connection).
    fn through(&mut self, delimiter: &[u8]) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = find(&self.buf, delimiter) {
                return Ok(Some(self.take(i + delimiter.len())));
            }
            if !self.fill()? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "EOF inside a message"));
            }
        }
    }

    fn line(&mut self) -> io::Result<Vec<u8>> {
        self.through(b"\r\n")?
            .ok_or_else(|| io::Error::new(ErrorKind::UnexpectedEof, "EOF before a line"))
    }

    fn exactly(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "EOF inside a body"));
            }
        }
        Ok(self.take(n))
    }

    /// A chunked body through the end of its trailer section, framing and
    /// all, read by its own framing (not by the gateway's parser).
    fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut raw = Vec::new();
        loop {
            let line = self.line()?;
            raw.extend_from_slice(&line);
            let size = line[..line.len() - 2]
                .split(|&b| b == b';')
                .next()
                .and_then(|hex| usize::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok())
                .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "bad chunk size line"))?;
            if size == 0 {
                break;
            }
            raw.extend_from_slice(&self.exactly(size + 2)?);
        }
        loop {
            let line = self.line()?;
            raw.extend_from_slice(&line);
            if line == b"\r\n" {
                return Ok(raw);
            }
        }
    }

    /// Whatever arrives next after a protocol switch; empty at EOF.
    fn some(&mut self) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() {
            self.fill()?;
        }
        Ok(std::mem::take(&mut self.buf))
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }
}

/// Answers one request on `wire`; it may also take the connection over.
type Handler = dyn Fn(&Request, &mut Wire) -> io::Result<()> + Send + Sync;

/// A scripted dockerd on a unix socket in a private directory.
struct StandIn {
    path: PathBuf,
    events: Receiver<Event>,
    // Last, so the socket file goes after everything that refers to it.
    _dir: PrivateDir,
}

impl StandIn {
    fn start(handler: impl Fn(&Request, &mut Wire) -> io::Result<()> + Send + Sync + 'static) -> StandIn {
        let dir = PrivateDir::new();
        let path = dir.0.join("docker.sock");
        let listener = UnixListener::bind(&path).expect("bind the stand-in's socket");
        let (tx, events) = mpsc::channel();
        let handler: Arc<Handler> = Arc::new(handler);
        // Detached: blocked in accept, it does not keep the test binary
        // from exiting once the tests are done.
        thread::spawn(move || {
            for (conn, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                let events = tx.clone();
                thread::spawn(move || {
                    let mut wire = Wire {
                        stream,
                        buf: Vec::new(),
                        conn,
                        events,
                    };
                    if let Err(e) = serve(&mut wire, &*handler) {
                        wire.report(Seen::Failed(e.to_string()));
                    }
                });
            }
        });
        StandIn {
            path,
            events,
            _dir: dir,
        }
    }

    fn next(&self) -> Event {
        match self.events.recv_timeout(PATIENCE) {
            Ok(e) => e,
            Err(RecvTimeoutError::Timeout) => panic!("the stand-in dockerd received nothing more"),
            Err(RecvTimeoutError::Disconnected) => panic!("the stand-in dockerd stopped"),
        }
    }

    /// The next request dockerd received, head and body concatenated as
    /// they arrived, and the upstream connection it came on.
    fn request(&self) -> (usize, String) {
        let head = self.next();
        let Seen::Head(h) = head.seen else {
            panic!("expected a request head upstream, got {head:?}")
        };
        let body = self.next();
        match body {
            Event {
                conn,
                seen: Seen::Body(b),
            } if conn == head.conn => (conn, text(&[h, b].concat())),
            other => panic!("expected the body of {:?} upstream, got {other:?}", text(&h)),
        }
    }

    /// Tunnelled bytes until `n` have arrived on `conn`.
    fn raw(&self, conn: usize, n: usize) -> String {
        let mut got = Vec::new();
        while got.len() < n {
            match self.next() {
                Event {
                    conn: c,
                    seen: Seen::Raw(bytes),
                } if c == conn => got.extend_from_slice(&bytes),
                other => panic!("expected tunnelled bytes after {:?}, got {other:?}", text(&got)),
            }
        }
        text(&got)
    }

    /// Nothing reached the stand-in that was not already taken.
    fn assert_quiet(&self) {
        match self.events.try_recv() {
            Err(TryRecvError::Empty) => {}
            other => panic!("the stand-in received something unexpected: {other:?}"),
        }
    }
}

/// Reads requests off one upstream connection, reporting each, until the
/// gateway closes it.
fn serve(wire: &mut Wire, handler: &Handler) -> io::Result<()> {
    while let Some(head) = wire.through(b"\r\n\r\n")? {
        let head_text = text(&head);
        wire.report(Seen::Head(head));
        let body = if let Some(n) = header(&head_text, "content-length") {
            let n = n
                .parse()
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, "bad Content-Length"))?;
            wire.exactly(n)?
        } else if header(&head_text, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            wire.chunked()?
        } else {
            Vec::new()
        };
        wire.report(Seen::Body(body));
        let request = Request {
            target: head_text.split(' ').nth(1).unwrap_or("").to_string(),
        };
        handler(&request, wire)?;
    }
    Ok(())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A gateway like the daemon's default one, but on a free loopback port
/// and in front of `upstream`.
fn gateway(upstream: &Path) -> SocketAddr {
    gateway_with(upstream, true)
}

fn gateway_with(upstream: &Path, splice: bool) -> SocketAddr {
    let cfg = Config {
        listen: vec![ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0)))],
        upstream: UpstreamAddr::Unix(upstream.to_path_buf()),
        splice,
        ..Config::default()
    };
    let mut server = Server::new(cfg, Vec::new()).expect("the gateway starts");
    let addr = server.bound_tcp().expect("a TCP listener");
    // Detached: the loop runs until the test binary exits.
    thread::spawn(move || server.run());
    addr
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the gateway");
    s.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    s.set_write_timeout(Some(PATIENCE)).expect("write timeout");
    s
}

/// Reads until `n` bytes have arrived, the gateway closed or `PATIENCE`
/// ran out; what arrived is returned either way, for the assertion to show.
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        match s.read(&mut got[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => filled += k,
        }
    }
    got.truncate(filled);
    got
}

/// Everything until the gateway closes; fails if it does not.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    if let Err(e) = s.read_to_end(&mut got) {
        panic!("the gateway did not close ({e}) after {:?}", text(&got));
    }
    got
}

/// A reply of dockerd's shape with a JSON body.
fn json_reply(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// An error the gateway makes itself, as Docker clients expect it:
/// `{"message": ...}`.
fn gateway_error(status: &str, message: &str, close: bool) -> String {
    let body = format!("{{\"message\":\"{message}\"}}");
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}Server: dockermand\r\n\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" },
    )
}

/// The reply `/_ping` gets from dockerd.
const PONG: &str = "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK";

/// `PONG` as a client that asked to close gets it.
const PONG_CLOSE: &str = "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK";

#[test]
fn keep_alive_serves_two_requests_and_replaces_hop_by_hop_headers() {
    let dockerd = StandIn::start(|req, wire| {
        match req.target.as_str() {
        "/v1.47/version" => wire.send(json_reply(r#"{"Version":"28.2.2"}"#).as_bytes()),
        // As Go's server does for a request that asked to close.
        "/v1.47/info" => wire.send(
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        ),
        _ => wire.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    }
    });
    let addr = gateway(&dockerd.path);
    let mut client = connect(addr);

    client
        .write_all(
            b"GET /v1.47/version HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\n\
              Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\r\n",
        )
        .unwrap();
    let (first_conn, first) = dockerd.request();
    assert_eq!(
        first,
        "GET /v1.47/version HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\n\r\n"
    );
    let reply = json_reply(r#"{"Version":"28.2.2"}"#);
    assert_eq!(text(&read_n(&mut client, reply.len())), reply);

    // `X-Hop` is named by `Connection`, which makes it hop-by-hop too.
    client
        .write_all(
            b"GET /v1.47/info HTTP/1.1\r\nHost: localhost\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\nAccept: application/json\r\n\r\n",
        )
        .unwrap();
    let (second_conn, second) = dockerd.request();
    assert_eq!(
        second,
        "GET /v1.47/info HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n"
    );
    // dockerd kept the first connection open, so the gateway reuses it.
    assert_eq!(second_conn, first_conn, "the upstream connection was not reused");
    assert_eq!(
        text(&read_to_close(&mut client)),
        "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    );
}

#[test]
fn request_bodies_arrive_with_their_head_or_later() {
    let dockerd = StandIn::start(|_, wire| {
        wire.send(b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Length: 0\r\n\r\n")
    });
    let addr = gateway(&dockerd.path);
    let mut client = connect(addr);
    let reply = "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Length: 0\r\n\r\n";

    // Head and body in one segment.
    let whole = "PUT /v1.47/containers/x/archive?path=/tmp HTTP/1.1\r\nHost: localhost\r\n\
                 Content-Type: application/x-tar\r\nContent-Length: 11\r\n\r\nhello world";
    client.write_all(whole.as_bytes()).unwrap();
    assert_eq!(dockerd.request().1, whole);
    assert_eq!(text(&read_n(&mut client, reply.len())), reply);

    // The body is written only once dockerd has the head, so it cannot
    // have arrived with it.
    let head = "PUT /v1.47/containers/x/archive?path=/srv HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/x-tar\r\nContent-Length: 12\r\nConnection: close\r\n\r\n";
    client.write_all(head.as_bytes()).unwrap();
    let event = dockerd.next();
    // The client's hop closes after this; the hop to dockerd stays open.
    let upstream_head = head.replace("Connection: close\r\n", "");
    assert_eq!(event.seen, Seen::Head(upstream_head.into_bytes()));
    client.write_all(b"second body!").unwrap();
    let event = dockerd.next();
    assert_eq!(event.seen, Seen::Body(b"second body!".to_vec()));
    assert_eq!(
        text(&read_to_close(&mut client)),
        "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let dockerd = StandIn::start(|req, wire| match req.target.as_str() {
        "/_ping" => wire.send(PONG.as_bytes()),
        _ => wire.send(json_reply(r#"{"Version":"28.2.2"}"#).as_bytes()),
    });
    let addr = gateway(&dockerd.path);
    let mut client = connect(addr);

    client
        .write_all(
            b"GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n\
              GET /v1.47/version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    assert_eq!(
        dockerd.request().1,
        "GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n"
    );
    assert_eq!(
        dockerd.request().1,
        "GET /v1.47/version HTTP/1.1\r\nHost: localhost\r\n\r\n"
    );
    let version = r#"{"Version":"28.2.2"}"#;
    let expected = format!(
        "{PONG}HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{version}",
        version.len()
    );
    assert_eq!(text(&read_to_close(&mut client)), expected);
}

fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

#[test]
fn chunked_bodies_are_relayed_verbatim_both_ways() {
    let progress = [
        r#"{"stream":"Step 1/2 : FROM busybox"}"#,
        r#"{"stream":"\n"}"#,
        r#"{"stream":"Step 2/2 : RUN true"}"#,
    ];
    let dockerd = StandIn::start(move |req, wire| {
        if req.target != "/v1.47/build?t=demo" {
            return wire.send(PONG.as_bytes());
        }
        wire.send(
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )?;
        // One write per chunk, as a build streams its progress.
        for line in progress {
            wire.send(chunk(line).as_bytes())?;
        }
        wire.send(b"0\r\n\r\n")
    });
    let addr = gateway(&dockerd.path);
    let mut client = connect(addr);

    // An extension and a trailer too: nothing of the framing is rewritten.
    let request = "POST /v1.47/build?t=demo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-tar\r\n\
                   Transfer-Encoding: chunked\r\n\r\n5;name=first\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n";
    client.write_all(request.as_bytes()).unwrap();
    assert_eq!(dockerd.request().1, request);
    let reply = format!(
        "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{}0\r\n\r\n",
        progress.map(chunk).concat()
    );
    assert_eq!(text(&read_n(&mut client, reply.len())), reply);

    // The reply's end was found where it is: the connection serves on.
    client
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(
        dockerd.request().1,
        "GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n"
    );
    assert_eq!(text(&read_to_close(&mut client)), PONG_CLOSE);
}

/// A body no shifted, dropped or repeated run of bytes leaves unchanged.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
}

/// Where two long byte strings first differ, for a readable failure.
fn assert_same_bytes(got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "got {} bytes, want {}; first difference at {at:?}; got starts {:?}",
            got.len(),
            want.len(),
            text(&got[..got.len().min(200)])
        );
    }
}

/// `GET /containers/x/export` and friends answered with `size` bytes, head
/// and body written by dockerd in one go.
fn sized_reply(size: usize) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/x-tar\r\nContent-Length: {size}\r\n\r\n")
        .into_bytes();
    out.extend_from_slice(&pattern(size));
    out
}

fn size_in(target: &str) -> usize {
    target
        .rsplit_once("size=")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

fn replies_of_any_size(splice: bool) {
    let dockerd = StandIn::start(|req, wire| wire.send(&sized_reply(size_in(&req.target))));
    let addr = gateway_with(&dockerd.path, splice);
    let mut client = connect(addr);
    // Small enough to go out with the head, just too big for that, and
    // large enough to take many reads and writes.
    for size in [2000, 16 * 1024 + 1, 1024 * 1024] {
        let request =
            format!("GET /v1.47/containers/x/export?size={size} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        client.write_all(request.as_bytes()).unwrap();
        assert_eq!(dockerd.request().1, request);
        let want = sized_reply(size);
        assert_same_bytes(&read_n(&mut client, want.len()), &want);
    }
    client
        .write_all(
            b"GET /v1.47/containers/x/export?size=0 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    dockerd.request();
    assert_eq!(
        text(&read_to_close(&mut client)),
        "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/x-tar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn replies_written_with_their_head_arrive_byte_exact_spliced() {
    replies_of_any_size(true);
}

#[test]
fn replies_written_with_their_head_arrive_byte_exact_copied() {
    replies_of_any_size(false);
}

/// dockerd's stream framing: stream 1 (stdout), big-endian length.
fn stdout_frame(data: &str) -> Vec<u8> {
    let mut out = vec![1, 0, 0, 0];
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data.as_bytes());
    out
}

const UPGRADED: &str = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";

#[test]
fn attach_hijack_tunnels_both_ways_and_passes_half_close() {
    let dockerd = StandIn::start(|_, wire| {
        // The switch and the first output in one write, as dockerd may
        // send them when the container has output waiting.
        wire.send(&[UPGRADED.as_bytes(), &stdout_frame("hello\n")].concat())?;
        loop {
            let got = wire.some()?;
            if got.is_empty() {
                break;
            }
            wire.report(Seen::Raw(got));
        }
        wire.report(Seen::Eof);
        // The client's input is over; its output is not.
        wire.send(&stdout_frame("bye\n"))?;
        wire.stream.shutdown(Shutdown::Write)
    });
    let addr = gateway(&dockerd.path);
    let mut client = connect(addr);

    // As the docker CLI sends it.
    let request = "POST /v1.47/containers/x/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n\
                   Host: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\nContent-Length: 0\r\n\
                   Content-Type: text/plain\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
    client.write_all(request.as_bytes()).unwrap();
    let (conn, seen) = dockerd.request();
    assert_eq!(
        seen,
        "POST /v1.47/containers/x/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n\
         Host: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\nContent-Length: 0\r\n\
         Content-Type: text/plain\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    );
    let want = [UPGRADED.as_bytes(), &stdout_frame("hello\n")].concat();
    assert_eq!(text(&read_n(&mut client, want.len())), text(&want));

    client.write_all(b"ls -l\n").unwrap();
    assert_eq!(dockerd.raw(conn, 6), "ls -l\n");
    client.shutdown(Shutdown::Write).unwrap();
    let event = dockerd.next();
    assert_eq!((event.conn, event.seen), (conn, Seen::Eof));
    assert_eq!(read_to_close(&mut client), stdout_frame("bye\n"));
}

#[test]
fn upstream_down_is_a_502_with_a_docker_style_message() {
    let dir = PrivateDir::new();
    let addr = gateway(&dir.0.join("absent.sock"));
    let mut client = connect(addr);

    client
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let want = gateway_error("502 Bad Gateway", "cannot connect to the Docker daemon", false);
    assert_eq!(text(&read_n(&mut client, want.len())), want);

    // The connection stays usable: the client may retry on it.
    client
        .write_all(b"GET /v1.47/version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(
        text(&read_to_close(&mut client)),
        gateway_error("502 Bad Gateway", "cannot connect to the Docker daemon", true)
    );
}

#[test]
fn malformed_head_is_a_400_and_the_gateway_serves_on() {
    let dockerd = StandIn::start(|_, wire| wire.send(PONG.as_bytes()));
    let addr = gateway(&dockerd.path);

    let mut bad = connect(addr);
    bad.write_all(b"GET /_ping HTTP/1.1\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(
        text(&read_to_close(&mut bad)),
        gateway_error("400 Bad Request", "bare LF in head", true)
    );

    let mut good = connect(addr);
    good.write_all(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    // The first thing dockerd ever sees is the good request.
    assert_eq!(
        dockerd.request().1,
        "GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n"
    );
    assert_eq!(text(&read_to_close(&mut good)), PONG_CLOSE);
}

#[test]
fn head_split_across_writes_is_answered_once_complete() {
    let dockerd = StandIn::start(|_, wire| wire.send(json_reply("[]").as_bytes()));
    let addr = gateway(&dockerd.path);
    let mut client = connect(addr);

    client
        .write_all(b"GET /v1.47/containers/json?all=1 HTTP/1.1\r\nHost: local")
        .unwrap();
    // A barrier through the event loop: the first part was in the gateway's
    // socket before this second client connected, and epoll reports ready
    // sockets in the order they became ready, so by the time this reply is
    // written the loop has handled the first part.
    let mut other = connect(addr);
    other
        .write_all(b"GET /_dockermand/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let status = read_to_close(&mut other);
    assert!(
        status.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "status: {:?}",
        text(&status)
    );
    client.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match client.read(&mut byte) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("a partial head was answered: {other:?} {:?}", text(&byte)),
    }
    client.set_nonblocking(false).unwrap();
    dockerd.assert_quiet();

    client
        .write_all(b"host\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(
        dockerd.request().1,
        "GET /v1.47/containers/json?all=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\n\r\n"
    );
    assert_eq!(
        text(&read_to_close(&mut client)),
        "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]"
    );
}

/// A client that makes one request per connection (`Connection: close`,
/// or hanging up after its reply) leaves its upstream connection, still
/// good, to the next client: dockerd sees one connection.
#[test]
fn an_upstream_connection_outlives_its_client_for_the_next_one() {
    let dockerd = StandIn::start(|_, wire| wire.send(json_reply("{}").as_bytes()));
    let addr = gateway(&dockerd.path);
    let mut upstreams = Vec::new();
    for close in [true, false, true] {
        let mut client = connect(addr);
        let request = if close {
            "GET /v1.47/version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        } else {
            "GET /v1.47/version HTTP/1.1\r\nHost: localhost\r\n\r\n"
        };
        client.write_all(request.as_bytes()).unwrap();
        let (conn, head) = dockerd.request();
        assert_eq!(head, "GET /v1.47/version HTTP/1.1\r\nHost: localhost\r\n\r\n");
        upstreams.push(conn);
        if !close {
            let reply = json_reply("{}");
            assert_eq!(text(&read_n(&mut client, reply.len())), reply);
            client.shutdown(std::net::Shutdown::Write).unwrap();
        }
        // Once the gateway has closed its side, it is done with this client.
        let rest = read_to_close(&mut client);
        assert_eq!(rest.is_empty(), !close, "{}", text(&rest));
    }
    assert_eq!(
        upstreams,
        [0, 0, 0],
        "the idle upstream connection was not handed on"
    );
}

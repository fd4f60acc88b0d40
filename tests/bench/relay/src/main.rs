//! splicerelay: a bare TCP → unix socket relay for the benchmarks. No HTTP,
//! no parsing, no limits: it accepts a TCP connection, connects to the
//! upstream's unix socket and moves bytes both ways with splice(2) through
//! two kernel pipes per connection (one per direction), so the data never
//! enters user space. It is the best any userspace relay can do on the
//! machine, the ceiling the proxies' transfer figures are compared with.
//!
//! One thread, edge-triggered epoll. A direction whose source reaches EOF is
//! half-closed towards its destination (shutdown(SHUT_WR)) once its pipe is
//! drained, so uploads and downloads that end on EOF complete; a connection
//! is dropped when both directions are done or on any error.
//!
//!   splicerelay --listen 127.0.0.1:PORT --upstream /path/to.sock
//!               [--pipe-size-up BYTES] [--pipe-size-down BYTES] [--pipe-size BYTES]
//!
//! The pipe sizes are the capacities asked of each direction's pipe with
//! F_SETPIPE_SZ (--pipe-size sets both); if the kernel refuses one (over
//! /proc/sys/fs/pipe-max-size or the per-user pipe quota) that pipe keeps its
//! default (64 KiB). The defaults are what moved 1 GiB fastest and with the
//! least CPU on the bench machine (see tests/bench/README.md): 256 KiB for
//! uploads (client → upstream; 64 KiB and 32 KiB were ~15 % slower and took
//! ~40 % more CPU, 512 KiB and 1 MiB were no better) and 32 KiB for
//! downloads (upstream → client over TCP; 64 KiB to 1 MiB were 10-40 %
//! slower and took 40-100 % more CPU).
//! Prints "ready" once it listens.

#[path = "../../common/sys.rs"]
mod sys;

use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;

use sys::{Epoll, Pipe, EPOLLIN, EPOLLOUT, EPOLLRDHUP};

const LISTENER: u64 = u64::MAX;
const DEFAULT_PIPE_UP: usize = 256 * 1024;
const DEFAULT_PIPE_DOWN: usize = 32 * 1024;
/// Edge-triggered: an event comes only when readiness changes, so every
/// wake-up pumps until the kernel says EAGAIN.
const EPOLLET: u32 = 1 << 31;

/// One direction: source socket → pipe → destination socket.
struct Dir {
    pipe: Pipe,
    cap: usize,
    /// Bytes sitting in the pipe.
    queued: usize,
    src_eof: bool,
    dst_shut: bool,
}

enum Pumped {
    /// Waiting for readiness (or finished).
    Blocked,
    /// The connection failed (reset, broken pipe).
    Failed,
}

impl Dir {
    fn new(want: usize) -> io::Result<Dir> {
        let pipe = Pipe::new(sys::O_NONBLOCK | sys::O_CLOEXEC)?;
        let cap = pipe.set_size(want).or_else(|_| pipe.size()).unwrap_or(64 * 1024);
        Ok(Dir {
            pipe,
            cap,
            queued: 0,
            src_eof: false,
            dst_shut: false,
        })
    }

    fn done(&self) -> bool {
        self.dst_shut
    }

    /// Moves what can move now. Stops when neither end makes progress: the
    /// source said EAGAIN with the pipe empty, or the destination said
    /// EAGAIN (each of which brings a new edge later), or both are done.
    fn pump(&mut self, src: c_int, dst: c_int, shut: impl FnOnce()) -> Pumped {
        let flags = sys::SPLICE_F_MOVE | sys::SPLICE_F_NONBLOCK;
        loop {
            let mut progress = false;
            if !self.src_eof && self.queued < self.cap {
                match sys::splice_fds(src, self.pipe.w, self.cap - self.queued, flags) {
                    Ok(0) => {
                        self.src_eof = true;
                        progress = true;
                    }
                    Ok(n) => {
                        self.queued += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(_) => return Pumped::Failed,
                }
            }
            if self.queued > 0 {
                match sys::splice_fds(self.pipe.r, dst, self.queued, flags) {
                    Ok(n) => {
                        self.queued -= n;
                        progress = progress || n > 0;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(_) => return Pumped::Failed,
                }
            }
            if self.src_eof && self.queued == 0 {
                if !self.dst_shut {
                    shut();
                    self.dst_shut = true;
                }
                return Pumped::Blocked;
            }
            if !progress {
                return Pumped::Blocked;
            }
        }
    }
}

struct Conn {
    client: TcpStream,
    upstream: UnixStream,
    up: Dir,   // client → upstream
    down: Dir, // upstream → client
}

impl Conn {
    /// Pumps both directions; true when the connection is finished.
    fn pump(&mut self) -> bool {
        let (c, u) = (self.client.as_raw_fd(), self.upstream.as_raw_fd());
        let up = self.up.pump(c, u, || {
            let _ = self.upstream.shutdown(Shutdown::Write);
        });
        if let Pumped::Failed = up {
            return true;
        }
        let down = self.down.pump(u, c, || {
            let _ = self.client.shutdown(Shutdown::Write);
        });
        if let Pumped::Failed = down {
            return true;
        }
        self.up.done() && self.down.done()
    }
}

fn die(msg: &str) -> ! {
    eprintln!("splicerelay: {msg}");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|s| s.as_str())
    };
    let listen = get("--listen").unwrap_or_else(|| die("missing --listen ADDR"));
    let upstream = get("--upstream")
        .unwrap_or_else(|| die("missing --upstream PATH"))
        .to_string();
    let size = |name: &str, default: usize| -> usize {
        match get(name).or_else(|| get("--pipe-size")) {
            Some(v) => v.parse().unwrap_or_else(|_| die(&format!("bad {name}"))),
            None => default,
        }
    };
    let sizes = (
        size("--pipe-size-up", DEFAULT_PIPE_UP),
        size("--pipe-size-down", DEFAULT_PIPE_DOWN),
    );
    if let Err(e) = run(listen, &upstream, sizes) {
        die(&e.to_string());
    }
}

/// `sizes`: the pipe capacities asked for (client → upstream, upstream → client).
fn run(listen: &str, upstream: &str, sizes: (usize, usize)) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    sys::set_backlog(listener.as_raw_fd(), 4096)?;
    let mut ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), EPOLLIN, LISTENER)?;
    println!("ready");
    io::stdout().flush()?;

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut ready: Vec<u64> = Vec::new();
    loop {
        ready.clear();
        ready.extend(ep.wait(-1)?.iter().map(|e| e.token()));
        for &tok in &ready {
            if tok == LISTENER {
                loop {
                    let client = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            // Out of descriptors and the like: drop this one, go on.
                            eprintln!("splicerelay: accept: {e}");
                            break;
                        }
                    };
                    let conn = match open(client, upstream, sizes) {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("splicerelay: {e}");
                            continue;
                        }
                    };
                    let idx = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    let ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
                    let tok = idx as u64;
                    if ep.add(conn.client.as_raw_fd(), ev, tok).is_err()
                        || ep.add(conn.upstream.as_raw_fd(), ev, tok).is_err()
                    {
                        free.push(idx);
                        continue;
                    }
                    conns[idx] = Some(conn);
                    // Bytes may already be waiting; the edge may be past.
                    if conns[idx].as_mut().unwrap().pump() {
                        conns[idx] = None;
                        free.push(idx);
                    }
                }
                continue;
            }
            let idx = tok as usize;
            let finished = match conns[idx].as_mut() {
                Some(c) => c.pump(),
                None => continue, // closed earlier in this batch
            };
            if finished {
                // Closing the descriptors takes them out of the epoll set.
                conns[idx] = None;
                free.push(idx);
            }
        }
    }
}

fn open(client: TcpStream, upstream: &str, sizes: (usize, usize)) -> io::Result<Conn> {
    client.set_nodelay(true)?;
    client.set_nonblocking(true)?;
    let up = UnixStream::connect(upstream)
        .map_err(|e| io::Error::new(e.kind(), format!("connect {upstream}: {e}")))?;
    up.set_nonblocking(true)?;
    Ok(Conn {
        client,
        upstream: up,
        up: Dir::new(sizes.0)?,
        down: Dir::new(sizes.1)?,
    })
}

//! Listening sockets: TCP (IPv4 and IPv6) and unix, accepting non-blocking
//! client connections.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;

use mio::net::{TcpListener, UnixListener};
use mio::{event, Interest, Registry, Token};

use crate::access::auth::PeerId;
use crate::config::ListenAddr;
use crate::net::socket::Stream;
use crate::sys;

/// Pending connections the kernel may queue (capped by somaxconn).
const BACKLOG: libc::c_int = 1024;

pub enum Socket {
    Tcp(TcpListener),
    /// The path is removed again when the listener goes away.
    Unix(UnixListener, PathBuf),
}

pub struct Listener {
    /// As configured, to match listeners across a reload.
    pub spec: ListenAddr,
    /// Where it really listens (a configured port 0 is resolved here).
    pub bound: String,
    socket: Socket,
}

impl Listener {
    pub fn bind(spec: &ListenAddr, unix_mode: u32) -> io::Result<Listener> {
        let (socket, bound) = match spec {
            ListenAddr::Tcp(addr) | ListenAddr::Tls(addr) => {
                let l = TcpListener::bind(*addr)?;
                let scheme = if spec.is_tls() { "tls" } else { "http" };
                let bound = format!("{scheme}://{}", l.local_addr()?);
                (Socket::Tcp(l), bound)
            }
            ListenAddr::Unix(path) => {
                remove_stale_socket(path)?;
                let l = UnixListener::bind(path)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(unix_mode))?;
                (Socket::Unix(l, path.clone()), format!("unix:{}", path.display()))
            }
        };
        // A burst of clients (a dashboard opening many streams) should wait
        // in the queue, not in SYN retries: std's backlog is 128.
        let fd = match &socket {
            Socket::Tcp(l) => l.as_fd(),
            Socket::Unix(l, _) => l.as_fd(),
        };
        // Failing that only leaves std's backlog, which still works.
        let _ = sys::socket::listen(fd, BACKLOG);
        Ok(Listener {
            spec: spec.clone(),
            bound,
            socket,
        })
    }

    pub fn local_tcp(&self) -> Option<std::net::SocketAddr> {
        match &self.socket {
            Socket::Tcp(l) => l.local_addr().ok(),
            Socket::Unix(..) => None,
        }
    }

    /// Next pending client, its address for logs and who it is (the IP of
    /// a TCP client, the uid of a unix one); `Ok(None)` when there is none.
    pub fn accept(&self) -> io::Result<Option<(Stream, String, PeerId)>> {
        loop {
            let r = match &self.socket {
                Socket::Tcp(l) => l.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    Some((Stream::Tcp(s), a.to_string(), PeerId::Ip(a.ip())))
                }),
                Socket::Unix(l, path) => l.accept().map(|(s, _)| {
                    let stream = Stream::Unix(s);
                    match stream.peer_uid() {
                        Ok(uid) => Some((stream, PeerId::Uid(uid).to_string(), PeerId::Uid(uid))),
                        Err(e) => {
                            // Dropping it closes it: a client we cannot tell
                            // must not pass for some other uid.
                            log::warn!("unix:{}: no peer credentials, closing: {e}", path.display());
                            None
                        }
                    }
                }),
            };
            match r {
                Ok(Some(client)) => return Ok(Some(client)),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

/// A socket file left by an earlier run would make bind fail; anything that
/// is not a socket is left alone.
fn remove_stale_socket(path: &PathBuf) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(_) => Ok(()),
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Socket::Unix(_, path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl event::Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match &mut self.socket {
            Socket::Tcp(l) => l.register(r, t, i),
            Socket::Unix(l, _) => l.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match &mut self.socket {
            Socket::Tcp(l) => l.reregister(r, t, i),
            Socket::Unix(l, _) => l.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match &mut self.socket {
            Socket::Tcp(l) => l.deregister(r),
            Socket::Unix(l, _) => l.deregister(r),
        }
    }
}

//! Where dockerd listens, and opening a non-blocking connection to it.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use mio::net::{TcpStream, UnixStream};

use crate::net::socket::Stream;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl UpstreamAddr {
    /// `unix:///var/run/docker.sock`, `unix:/path`, `/path` or `tcp://host:port`.
    pub fn parse(s: &str) -> Result<UpstreamAddr, String> {
        if let Some(path) = s.strip_prefix("unix://").or_else(|| s.strip_prefix("unix:")) {
            if path.is_empty() {
                return Err(format!("upstream {s:?}: empty socket path"));
            }
            return Ok(UpstreamAddr::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') {
            return Ok(UpstreamAddr::Unix(PathBuf::from(s)));
        }
        if let Some(hostport) = s.strip_prefix("tcp://") {
            let hostport = hostport.trim_end_matches('/');
            return hostport
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .map(UpstreamAddr::Tcp)
                .ok_or_else(|| format!("upstream {s:?}: cannot resolve host:port"));
        }
        Err(format!(
            "upstream {s:?}: expected unix:///path or tcp://host:port"
        ))
    }

    /// Starts connecting; completion is seen as writability of the socket.
    pub fn connect(&self) -> io::Result<Stream> {
        match self {
            UpstreamAddr::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
            UpstreamAddr::Tcp(addr) => {
                let s = TcpStream::connect(*addr)?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s))
            }
        }
    }
}

impl fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            UpstreamAddr::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let sock = UpstreamAddr::Unix("/var/run/docker.sock".into());
        assert_eq!(
            UpstreamAddr::parse("unix:///var/run/docker.sock"),
            Ok(sock.clone())
        );
        assert_eq!(UpstreamAddr::parse("unix:/var/run/docker.sock"), Ok(sock.clone()));
        assert_eq!(UpstreamAddr::parse("/var/run/docker.sock"), Ok(sock));
        assert_eq!(
            UpstreamAddr::parse("tcp://127.0.0.1:2375"),
            Ok(UpstreamAddr::Tcp("127.0.0.1:2375".parse().unwrap()))
        );
        assert!(UpstreamAddr::parse("http://x").is_err());
        assert!(UpstreamAddr::parse("unix://").is_err());
    }
}

//! `dockermand --selftest`: checks the parsers, the policy and a loopback
//! round trip through the real event loop against an in-process stand-in
//! dockerd, in one process. Made for emulated router CPUs (big-endian MIPS
//! shows byte-order bugs in length and frame code).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::access::gate::{authorize, Pass};
use crate::access::policy::{check_body, Policy};
use crate::access::route::{match_route, BodyCheck, Class, Matched};
use crate::config::{Config, ListenAddr};
use crate::console::websocket::{encode_frame, Decoded, Decoder, Opcode};
use crate::crypto::{base64, sha1, sha256 as digest};
use crate::http::chunked::{decode, ChunkedTracker};
use crate::http::request::{parse_request_head, Limits, RequestBody};
use crate::net::upstream::UpstreamAddr;
use crate::server::Server;

const BODY: usize = 1024 * 1024;

type Check = (&'static str, fn() -> Result<(), String>);

pub fn run() -> bool {
    let checks: &[Check] = &[
        ("digests", digests),
        ("request heads", request_heads),
        ("chunked framing", chunked_framing),
        ("websocket frames", websocket_frames),
        ("routes", routes),
        ("policy", policy),
        ("loopback round trip", round_trip),
        #[cfg(feature = "tls")]
        ("tls loopback with a client certificate", tls::round_trip),
    ];
    let mut ok = true;
    for &(name, check) in checks {
        match check() {
            Ok(()) => println!("ok   {name}"),
            Err(e) => {
                println!("FAIL {name}: {e}");
                ok = false;
            }
        }
    }
    println!("selftest {}", if ok { "passed" } else { "FAILED" });
    ok
}

fn ensure(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn digests() -> Result<(), String> {
    ensure(
        digest::hex(&digest::sha256(b"abc"))
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "sha256",
    )?;
    ensure(
        digest::hex(&sha1::sha1(b"abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d",
        "sha1",
    )?;
    ensure(base64::encode(b"foobar") == "Zm9vYmFy", "base64")?;
    ensure(
        digest::hex(&digest::pbkdf2_sha256(b"password", b"salt", 2))
            == "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
        "pbkdf2",
    )
}

fn request_heads() -> Result<(), String> {
    let limits = Limits {
        max_head_bytes: 16384,
        max_headers: 100,
    };
    let raw = b"PUT /v1.41/containers/a/archive?path=/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4294967296\r\n\r\n";
    let head = parse_request_head(raw, &limits)
        .map_err(|e| e.message().to_string())?
        .ok_or("incomplete")?;
    ensure(head.body == RequestBody::Length(1 << 32), "64-bit Content-Length")?;
    let smuggle =
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    ensure(parse_request_head(smuggle, &limits).is_err(), "CL.TE accepted")
}

fn chunked_framing() -> Result<(), String> {
    let body = b"1F\r\nabcdefghijklmnopqrstuvwxyz01234\r\n0\r\n\r\n";
    let mut t = ChunkedTracker::new();
    let used = t.advance(body).map_err(|e| e.message().to_string())?;
    ensure(used == body.len() && t.is_done(), "message end")?;
    ensure(
        decode(body).map_err(|e| e.message().to_string())?.len() == 31,
        "decoded length",
    )
}

fn websocket_frames() -> Result<(), String> {
    for len in [0usize, 125, 126, 65535, 65536, 70000] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut frame = encode_frame(true, Opcode::Binary, &payload, Some([1, 2, 3, 4]));
        let frame_len = frame.len();
        let mut d = Decoder::new(1 << 20);
        let (used, decoded) = d.decode(&mut frame).map_err(|e| e.to_string())?;
        match decoded {
            Decoded::Data {
                payload: got,
                end: true,
                ..
            } if got == payload.as_slice() && used == frame_len => {}
            _ => return Err(format!("frame of {len} bytes did not round-trip")),
        }
    }
    Ok(())
}

fn routes() -> Result<(), String> {
    let class = |m: &str, p: &str| match match_route(m, p) {
        Ok(Matched::Route(r)) => Some(r.class),
        _ => None,
    };
    ensure(
        class("GET", "/v1.41/images/a/b:c/json") == Some(Class::Read),
        "image inspect",
    )?;
    ensure(class("POST", "/exec/x/start") == Some(Class::Exec), "exec start")?;
    ensure(
        match_route("GET", "/containers/x%2Fexport").is_err(),
        "encoded slash",
    )
}

fn policy() -> Result<(), String> {
    let body = br#"{"hostconfig":{"\u0050rivileged":true}}"#;
    let denied = check_body(BodyCheck::ContainerCreate, None, body, &Policy::default());
    ensure(
        denied.map_err(|d| d.rule) == Err("privileged"),
        "privileged not denied",
    )?;
    let cfg = Config::default();
    let limits = Limits {
        max_head_bytes: 16384,
        max_headers: 100,
    };
    let head = parse_request_head(
        b"POST /containers/create HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n",
        &limits,
    )
    .ok()
    .flatten()
    .ok_or("head")?;
    let operator = crate::access::auth::Principal {
        name: "t".into(),
        role: "operator".into(),
        ambient: false,
    };
    match authorize(&head, &operator, &cfg) {
        Ok(Pass {
            check: Some((BodyCheck::ContainerCreate, _)),
            ..
        }) => Ok(()),
        _ => Err("operator create is not body-checked".into()),
    }
}

/// A scripted dockerd, answering a few real routes.
fn stand_in(listener: UnixListener) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        // Without a thread for it, this client goes unanswered.
        let _ = crate::sys::thread::spawn(None, move || {
            let _ = serve(conn);
        });
    }
}

fn serve(conn: UnixStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        match path.as_str() {
            "/_ping" => conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"ping\":\"ok\"}")?,
            "/events" => {
                conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
                for i in 0..5 {
                    conn.write_all(format!("6\r\nline {i}\r\n").as_bytes())?;
                }
                conn.write_all(b"0\r\n\r\n")?;
            }
            "/containers/x/archive?path=/" => {
                let mut left = length;
                let mut buf = [0u8; 8192];
                while left > 0 {
                    let n = reader.read(&mut buf[..left.min(8192)])?;
                    if n == 0 {
                        return Ok(());
                    }
                    left -= n;
                }
                let reply = length.to_string();
                conn.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}", reply.len()).as_bytes())?;
            }
            "/containers/x/export" => {
                conn.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").as_bytes())?;
                conn.write_all(&vec![b'd'; BODY])?;
            }
            "/exec/x/start" => {
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body)?;
                conn.write_all(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")?;
                let mut input = Vec::new();
                reader.read_to_end(&mut input)?;
                conn.write_all(&input.to_ascii_uppercase())?;
                return Ok(());
            }
            _ => conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
        }
    }
}

fn read_reply(stream: &mut impl Read) -> Result<(String, Vec<u8>), String> {
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        all.extend_from_slice(&buf[..n]);
        let Some(end) = all.windows(4).position(|w| w == b"\r\n\r\n") else {
            if n == 0 {
                return Err("connection closed before a reply head".into());
            }
            continue;
        };
        let head = String::from_utf8_lossy(&all[..end]).to_string();
        let body_start = end + 4;
        let lower = head.to_ascii_lowercase();
        let complete = if let Some(cl) = lower.lines().find_map(|l| l.strip_prefix("content-length:")) {
            let cl: usize = cl.trim().parse().map_err(|_| "bad length")?;
            all.len() >= body_start + cl
        } else if lower.contains("transfer-encoding: chunked") {
            all.ends_with(b"0\r\n\r\n")
        } else {
            n == 0
        };
        if complete {
            return Ok((head, all[body_start..].to_vec()));
        }
        if n == 0 {
            return Err("connection closed mid-reply".into());
        }
    }
}

/// Removes a stand-in's directory and the files named in it (a few
/// `remove_file` calls are 2 KB smaller than std's `remove_dir_all`).
fn remove_stand_in(dir: &std::path::Path, files: &[&str]) {
    for name in ["docker.sock"].iter().chain(files) {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let _ = std::fs::remove_dir(dir);
}

/// A private directory with a stand-in dockerd listening in it.
fn stand_in_dockerd(name: &str) -> Result<(PathBuf, PathBuf), String> {
    let dir: PathBuf = std::env::temp_dir().join(format!("dockermand-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sock = dir.join("docker.sock");
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).map_err(|e| e.to_string())?;
    crate::sys::thread::spawn(None, move || stand_in(listener)).map_err(|e| e.to_string())?;
    Ok((dir, sock))
}

fn round_trip() -> Result<(), String> {
    let (dir, sock) = stand_in_dockerd("selftest")?;

    let cfg = Config {
        listen: vec![ListenAddr::Tcp("127.0.0.1:0".parse().map_err(|_| "addr")?)],
        upstream: UpstreamAddr::Unix(sock.clone()),
        log_level: log::LevelFilter::Off,
        ..Config::default()
    };
    let mut server = Server::new(cfg, Vec::new()).map_err(|e| e.to_string())?;
    let addr = server.bound_tcp().ok_or("no TCP listener")?;
    crate::sys::thread::spawn(None, move || {
        let _ = server.run();
    })
    .map_err(|e| e.to_string())?;

    let connect = || -> Result<TcpStream, String> {
        let s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        Ok(s)
    };
    let mut s = connect()?;
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let (head, body) = read_reply(&mut s)?;
    ensure(
        head.starts_with("HTTP/1.1 200") && body == b"{\"ping\":\"ok\"}",
        "JSON request",
    )?;

    s.write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let (_, body) = read_reply(&mut s)?;
    ensure(
        decode(&body).map_err(|e| e.message().to_string())? == b"line 0line 1line 2line 3line 4",
        "chunked stream",
    )?;

    s.write_all(
        format!(
            "PUT /containers/x/archive?path=/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: {BODY}\r\n\r\n"
        )
        .as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    s.write_all(&vec![b'u'; BODY]).map_err(|e| e.to_string())?;
    let (_, body) = read_reply(&mut s)?;
    ensure(body == BODY.to_string().as_bytes(), "upload")?;

    s.write_all(b"GET /containers/x/export HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let (_, body) = read_reply(&mut s)?;
    ensure(body.len() == BODY && body.iter().all(|&b| b == b'd'), "download")?;

    let mut t = connect()?;
    t.write_all(b"POST /exec/x/start HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}")
        .map_err(|e| e.to_string())?;
    t.write_all(b"hello").map_err(|e| e.to_string())?;
    t.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    t.read_to_end(&mut all).map_err(|e| e.to_string())?;
    ensure(
        all.starts_with(b"HTTP/1.1 101") && all.ends_with(b"\r\n\r\nHELLO"),
        "hijacked tunnel with half-close",
    )?;

    s.write_all(b"GET /_dockermand/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let (_, body) = read_reply(&mut s)?;
    let status: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let spliced = status["bytes"]["spliced"].as_u64().unwrap_or(0);
    let copied = status["bytes"]["copied"].as_u64().unwrap_or(0);
    remove_stand_in(&dir, &[]);
    // The body bytes that arrive with a head go out with it (at most a
    // head buffer's worth, each way); the rest must be spliced.
    let with_heads = 2 * Config::default().max_head_bytes as u64;
    ensure(
        spliced + copied >= 2 * BODY as u64 && spliced + with_heads >= 2 * BODY as u64,
        &format!("only {spliced} bytes went through splice ({copied} copied)"),
    )
}

/// The TLS path on the router's own CPU: a handshake with a client
/// certificate (ring's assembly, the handshake worker), the certificate's
/// names as a credential, a request, and a hijacked tunnel whose half-close
/// travels as close_notify.
#[cfg(feature = "tls")]
mod tls {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::time::Duration;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

    use super::{ensure, read_reply, stand_in_dockerd};
    use crate::access::auth::{CertName, CertRole};
    use crate::config::{Config, ListenAddr, TlsSettings};
    use crate::net::upstream::UpstreamAddr;
    use crate::server::Server;

    /// Test identities made by `tests/tls/make.sh`; they vouch for nothing.
    const CA: &[u8] = include_bytes!("../tests/tls/ca.pem");
    const SERVER_CERT: &[u8] = include_bytes!("../tests/tls/server.pem");
    const SERVER_KEY: &[u8] = include_bytes!("../tests/tls/server.key");
    const CLIENT_CERT: &[u8] = include_bytes!("../tests/tls/client.pem");
    const CLIENT_KEY: &[u8] = include_bytes!("../tests/tls/client.key");

    pub fn round_trip() -> Result<(), String> {
        let (dir, sock) = stand_in_dockerd("selftest-tls")?;
        let file = |name: &str, bytes: &[u8]| -> Result<_, String> {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
            Ok(Some(path))
        };
        let mut cfg = Config {
            listen: vec![ListenAddr::Tls("127.0.0.1:0".parse().map_err(|_| "addr")?)],
            upstream: UpstreamAddr::Unix(sock),
            log_level: log::LevelFilter::Off,
            tls: TlsSettings {
                cert: file("server.pem", SERVER_CERT)?,
                key: file("server.key", SERVER_KEY)?,
                client_ca: file("ca.pem", CA)?,
                ..Config::default().tls
            },
            ..Config::default()
        };
        cfg.auth.certs.push(CertRole {
            name: CertName::AltName("client.selftest".into()),
            role: "admin".into(),
        });
        let mut server = Server::new(cfg, Vec::new()).map_err(|e| e.to_string())?;
        let addr = server.bound_tcp().ok_or("no TLS listener")?;
        crate::sys::thread::spawn(None, move || {
            let _ = server.run();
        })
        .map_err(|e| e.to_string())?;

        let connect = |with_cert: bool| -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
            let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
            tcp.set_read_timeout(Some(Duration::from_secs(20)))
                .map_err(|e| e.to_string())?;
            let tls = ClientConnection::new(
                client_config(with_cert)?,
                ServerName::try_from("localhost").map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
            Ok(StreamOwned::new(tls, tcp))
        };

        let mut s = connect(true)?;
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let (head, body) = read_reply(&mut s)?;
        ensure(
            head.starts_with("HTTP/1.1 200") && body == b"{\"ping\":\"ok\"}",
            &format!("request with a mapped client certificate: {head}"),
        )?;

        let mut t = connect(true)?;
        t.write_all(b"POST /exec/x/start HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}hello")
            .map_err(|e| e.to_string())?;
        t.conn.send_close_notify();
        t.flush().map_err(|e| e.to_string())?;
        let mut all = Vec::new();
        t.read_to_end(&mut all).map_err(|e| e.to_string())?;
        ensure(
            all.starts_with(b"HTTP/1.1 101") && all.ends_with(b"\r\n\r\nHELLO"),
            "hijacked tunnel with close_notify as half-close",
        )?;

        super::remove_stand_in(&dir, &["server.pem", "server.key", "ca.pem"]);
        let mut anonymous = connect(false)?;
        let refused = anonymous
            .write_all(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .and_then(|()| anonymous.read(&mut [0; 64]));
        ensure(
            matches!(refused, Err(_) | Ok(0)),
            "a client without a certificate was served",
        )
    }

    fn client_config(with_cert: bool) -> Result<Arc<ClientConfig>, String> {
        let mut roots = RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(CA).map_err(|e| e.to_string())?;
        roots.add(ca).map_err(|e| e.to_string())?;
        let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = if with_cert {
            let chain = vec![CertificateDer::from_pem_slice(CLIENT_CERT).map_err(|e| e.to_string())?];
            let key = PrivateKeyDer::from_pem_slice(CLIENT_KEY).map_err(|e| e.to_string())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        } else {
            builder.with_no_client_auth()
        };
        Ok(Arc::new(config))
    }
}

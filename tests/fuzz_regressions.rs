//! Replays committed fuzz inputs through the fuzz targets' own property
//! checks (`fuzz/src/checks.rs`), without libFuzzer.
//!
//! For each target it reads every file in `tests/regressions/<target>/`
//! (minimised crashes, one file each) and in `fuzz/corpus/<target>/` (the
//! hand-made seeds, real client requests and hostile cases). A file named
//! `reject-*` must be rejected and one named `accept-*` accepted; every file
//! must pass the properties the fuzzer checks. A few boundary inputs too
//! large for the fuzzers to find are built here.

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

use checks::Check;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        root.join("tests/regressions").join(target),
        root.join("fuzz/corpus").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("listing regression inputs").path();
            let name = path.file_name().unwrap().to_string_lossy();
            if !path.is_file() || name.starts_with('.') || name.ends_with(".md") {
                continue;
            }
            let data = std::fs::read(&path).expect("reading a regression input");
            out.push((path, data));
        }
    }
    out.sort();
    out
}

fn replay(target: &str, check: fn(&[u8]) -> Check) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no inputs for {target}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    for (path, data) in &files {
        let shown = path.strip_prefix(root).unwrap_or(path).display().to_string();
        let name = path.file_name().unwrap().to_string_lossy();
        let outcome = std::panic::catch_unwind(|| check(data));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{shown}: {why}")),
            Err(_) => failures.push(format!("{shown}: panicked")),
        }
        let verdict = checks::verdict(target, data);
        if name.starts_with("reject-") && verdict != Some(false) {
            failures.push(format!("{shown}: should be rejected, verdict {verdict:?}"));
        }
        if name.starts_with("accept-") && verdict != Some(true) {
            failures.push(format!("{shown}: should be accepted, verdict {verdict:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn request_head() {
    replay("request_head", checks::request_head);
}

#[test]
fn response_head() {
    replay("response_head", checks::response_head);
}

#[test]
fn chunked() {
    replay("chunked", checks::chunked);
}

#[test]
fn config_file() {
    replay("config_file", checks::config_file);
}

#[test]
fn config_args() {
    replay("config_args", checks::config_args);
}

#[test]
fn route() {
    replay("route", checks::route);
}

#[test]
fn policy() {
    replay("policy", checks::policy);
}

#[test]
fn build_query() {
    replay("build_query", checks::build_query);
}

#[test]
fn ws_frame() {
    replay("ws_frame", checks::ws_frame);
}

#[test]
fn auth_header() {
    replay("auth_header", checks::auth_header);
}

#[test]
fn inflate_segment() {
    replay("inflate_segment", checks::inflate_segment);
}

#[cfg(feature = "tls")]
#[test]
fn cert_names() {
    replay("cert_names", checks::cert_names);
}

#[cfg(feature = "tls")]
#[test]
fn tls_front() {
    replay("tls_front", checks::tls_front);
}

/// Known answers the properties alone cannot pin down.
#[test]
fn known_answers() {
    use dockermand::console::websocket::accept_key;
    // RFC 6455 §1.3.
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(
        accept_key(b" dGhlIHNhbXBsZSBub25jZQ==\t").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ"), None);
    // FIPS 180 and RFC 4231 test vectors.
    let hex = dockermand::crypto::sha256::hex;
    assert_eq!(
        hex(&dockermand::crypto::sha256::sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex(&dockermand::crypto::sha1::sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        hex(&dockermand::crypto::sha256::hmac_sha256(
            b"Jefe",
            b"what do ya want for nothing?"
        )),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

/// Heads at the size and count limits, which the fuzzers' input lengths
/// do not reach.
#[test]
fn request_head_at_the_limits() {
    let limit = checks::DEFAULT_LIMITS.max_head_bytes;
    let head = |len: usize| {
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        raw.resize(len - 4, b'a');
        raw.extend_from_slice(b"\r\n\r\n");
        raw
    };
    for len in [limit - 1, limit, limit + 1] {
        let raw = head(len);
        checks::request_head(&raw).unwrap();
        assert_eq!(checks::verdict("request_head", &raw), Some(len <= limit), "{len}");
    }
    let headers = |n: usize| {
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 1..n {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw
    };
    let max = checks::DEFAULT_LIMITS.max_headers;
    for n in [max, max + 1] {
        let raw = headers(n);
        checks::request_head(&raw).unwrap();
        checks::response_head(&[b"HTTP/1.1 200 OK\r\n", &raw[16..]].concat()).unwrap();
        assert_eq!(checks::verdict("request_head", &raw), Some(n <= max), "{n}");
    }
}

/// Size lines and trailer sections at their limits.
#[test]
fn chunked_at_the_limits() {
    use dockermand::http::chunked::{ChunkError, MAX_LINE, MAX_TRAILERS};
    // A size line of MAX_LINE bytes with its CR: leading zeros, then "5\r".
    for (line, ok) in [(MAX_LINE, true), (MAX_LINE + 1, false)] {
        let mut msg = b"0".to_vec();
        msg.resize(1 + line - 2, b'0');
        msg.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\n");
        checks::chunked(&msg).unwrap();
        let expect = if ok {
            checks::Framing::Ends(msg.len() - 1)
        } else {
            checks::Framing::Error(ChunkError::LineTooLong)
        };
        assert_eq!(checks::reference_chunked(&msg[1..]), expect, "line of {line}");
    }
    // A trailer section of MAX_TRAILERS bytes before its final LF.
    for (size, ok) in [(MAX_TRAILERS, true), (MAX_TRAILERS + 1, false)] {
        let mut msg = b"00\r\nX: ".to_vec();
        let fill = size - "X: \r\n\r".len();
        msg.resize(msg.len() + fill, b'a');
        msg.extend_from_slice(b"\r\n\r\n");
        checks::chunked(&msg).unwrap();
        assert_eq!(checks::verdict("chunked", &msg), Some(ok), "trailers of {size}");
    }
    // The largest chunk size, and one digit more.
    checks::chunked(b"0ffffffffffffffff\r\n").unwrap();
    assert_eq!(
        checks::reference_chunked(b"10000000000000000\r\n"),
        checks::Framing::Error(ChunkError::SizeOverflow)
    );
}

//! Which asset, redirect or sign-in a request for the web UI gets, and the
//! headers that go with it, decided from the request head alone.

use super::assets::{self, Asset};
use crate::http::reply::LocalReply;
use crate::http::request::RequestHead;

pub use crate::local::UI as ROOT;

#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// An asset, sent as stored (`gzip`) or inflated; `fresh` when the
    /// client's copy is current (304).
    Asset {
        asset: &'static Asset,
        gzip: bool,
        fresh: bool,
    },
    /// A browser asking for the UI somewhere else.
    Redirect(&'static str),
    NotFound,
    /// Only GET and HEAD read the UI.
    Method,
}

impl std::fmt::Debug for Asset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Asset {
    fn eq(&self, other: &Asset) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Asset {}

/// `None` when the request is not for the UI.
pub fn answer(head: &RequestHead) -> Option<Answer> {
    let path = head.path();
    let reading = matches!(head.method.as_str(), "GET" | "HEAD");
    // The Docker API has no route at `/`, nor dockermand at its prefix:
    // a browser there is looking for the UI. The login endpoint was the
    // sign-in page before the UI; its scripts ask for JSON.
    if reading
        && matches!(
            path,
            "/" | "/_dockermand" | "/_dockermand/" | "/_dockermand/ui" | "/_dockermand/login"
        )
        && wants_html(head)
    {
        return Some(Answer::Redirect(ROOT));
    }
    let name = path.strip_prefix(ROOT)?;
    if !reading {
        return Some(Answer::Method);
    }
    // The page with a one-time ticket is a sign-in (`local::Endpoint::UiSignIn`).
    if name.is_empty() && crate::access::gate::query_param(&head.target, "ticket").is_some() {
        return None;
    }
    let Some(asset) = assets::find(name) else {
        return Some(Answer::NotFound);
    };
    let gzip = head.header("accept-encoding").is_some_and(accepts_gzip);
    let etag = if gzip { asset.etag_gzip } else { asset.etag };
    let fresh = head
        .header("if-none-match")
        .is_some_and(|v| etag_matches(v, etag));
    Some(Answer::Asset { asset, gzip, fresh })
}

fn wants_html(head: &RequestHead) -> bool {
    head.header("accept")
        .is_some_and(|v| v.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

/// Whether an `Accept-Encoding` value takes gzip: named (or `*`, when gzip
/// is not named) with a q-value above zero.
pub fn accepts_gzip(value: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let mut star = false;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q_zero = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().map_or(true, |q| q <= 0.0))
        });
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return !q_zero;
        }
        star |= coding == "*" && !q_zero;
    }
    star
}

/// `If-None-Match`: `*`, or a list of entity tags compared weakly.
fn etag_matches(value: &[u8], etag: &str) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    value
        .split(',')
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// What a ticket sign-in answers, with its session's cookie: a page
/// carrying the page's half of the session's secret (its binding), which
/// the UI's script keeps before it opens the UI. Not in an address: any
/// page can send a browser to any address, with a binding of its choosing;
/// no other origin can read this reply.
pub fn sign_in_page(binding: &str, cors_origins: &[String]) -> LocalReply {
    let script = assets::ASSETS
        .iter()
        .find(|a| a.content_type.starts_with("text/javascript"))
        .map_or("", |a| a.name);
    let page = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>dockermand</title>\
         <meta name=\"dockermand-binding\" content=\"{binding}\"><script defer src=\"{script}\"></script>"
    );
    LocalReply::body(200, "text/html; charset=utf-8", page).with_headers(&format!(
        "Cache-Control: no-store\r\n{}",
        security_headers(cors_origins)
    ))
}

/// The headers every UI reply carries (and a redirect), after the status
/// line: a page that runs only its own script and style, talks only to its
/// own origin, and may be framed only by the configured origins (LuCI).
pub fn security_headers(cors_origins: &[String]) -> String {
    let ancestors = if cors_origins.is_empty() {
        "'none'".to_string()
    } else {
        cors_origins.join(" ")
    };
    format!(
        "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {ancestors}\r\n\
         X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
    )
}

/// The head of an asset reply (200, or 304 when `fresh`).
pub fn asset_head(asset: &Asset, gzip: bool, fresh: bool, cors_origins: &[String], close: bool) -> Vec<u8> {
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let (status, length) = match (fresh, gzip) {
        (true, _) => ("304 Not Modified", String::new()),
        (false, true) => (
            "200 OK",
            format!(
                "Content-Length: {}\r\nContent-Encoding: gzip\r\n",
                asset.gzip.len()
            ),
        ),
        (false, false) => ("200 OK", format!("Content-Length: {}\r\n", asset.size)),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\n{length}ETag: {}\r\nCache-Control: {cache}\r\n\
         Vary: Accept-Encoding\r\n{}{}Server: dockermand\r\n\r\n",
        asset.content_type,
        if gzip { asset.etag_gzip } else { asset.etag },
        security_headers(cors_origins),
        if close { "Connection: close\r\n" } else { "" },
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{parse_request_head, Limits};

    fn head(raw: &str) -> RequestHead {
        let raw = raw.replace('\n', "\r\n") + "\r\n";
        let limits = Limits {
            max_head_bytes: 16384,
            max_headers: 100,
        };
        parse_request_head(raw.as_bytes(), &limits).unwrap().unwrap()
    }

    fn answer_to(raw: &str) -> Option<Answer> {
        answer(&head(raw))
    }

    #[test]
    fn browsers_are_sent_to_the_ui_and_docker_clients_are_not() {
        let html = "Host: x\nAccept: text/html,*/*;q=0.8\n";
        assert_eq!(
            answer_to(&format!("GET / HTTP/1.1\n{html}")),
            Some(Answer::Redirect(ROOT))
        );
        assert_eq!(
            answer_to(&format!("GET /_dockermand/ HTTP/1.1\n{html}")),
            Some(Answer::Redirect(ROOT))
        );
        assert_eq!(
            answer_to(&format!("GET /_dockermand/login?ticket=ab HTTP/1.1\n{html}")),
            Some(Answer::Redirect(ROOT))
        );
        assert_eq!(
            answer_to("GET /_dockermand/login HTTP/1.1\nHost: x\nAccept: */*\n"),
            None
        );
        assert_eq!(answer_to("GET / HTTP/1.1\nHost: x\n"), None);
        assert_eq!(
            answer_to(&format!("POST / HTTP/1.1\n{html}Content-Length: 0\n")),
            None
        );
        assert_eq!(
            answer_to("GET /containers/json HTTP/1.1\nHost: x\nAccept: text/html\n"),
            None
        );
        assert_eq!(
            answer_to("DELETE /_dockermand/ui/ HTTP/1.1\nHost: x\n"),
            Some(Answer::Method)
        );
        assert_eq!(
            answer_to("GET /_dockermand/ui/nope.js HTTP/1.1\nHost: x\n"),
            Some(Answer::NotFound)
        );
        assert_eq!(
            answer_to("GET /_dockermand/ui/?ticket=ab HTTP/1.1\nHost: x\n"),
            None
        );
    }

    #[test]
    fn the_page_is_sent_gzipd_only_to_who_takes_it_and_revalidates() {
        let page = assets::find("").unwrap();
        let get = |extra: &str| answer_to(&format!("GET /_dockermand/ui/ HTTP/1.1\nHost: x\n{extra}"));
        let sent = |gzip, fresh| {
            Some(Answer::Asset {
                asset: page,
                gzip,
                fresh,
            })
        };
        assert_eq!(get(""), sent(false, false));
        assert_eq!(get("Accept-Encoding: br, gzip\n"), sent(true, false));
        assert_eq!(
            get(&format!(
                "Accept-Encoding: gzip\nIf-None-Match: W/{}\n",
                page.etag_gzip
            )),
            sent(true, true)
        );
        // The other encoding's tag is not this one's.
        assert_eq!(
            get(&format!("If-None-Match: {}\n", page.etag_gzip)),
            sent(false, false)
        );
        assert_eq!(
            get(&format!("If-None-Match: \"a\", {}\n", page.etag)),
            sent(false, true)
        );
    }

    #[test]
    fn accept_encoding_q_values() {
        for (value, gzip) in [
            ("gzip", true),
            ("GZIP;q=0.5", true),
            ("deflate, gzip;q=0", false),
            ("gzip; q=0.000", false),
            ("*", true),
            ("*, gzip;q=0", false),
            ("identity", false),
            ("x-gzip", true),
            ("gzip;q=nonsense", false),
        ] {
            assert_eq!(accepts_gzip(value.as_bytes()), gzip, "{value}");
        }
    }

    #[test]
    fn every_asset_inflates_to_its_size_and_hashed_names_are_immutable() {
        let mut out = vec![0; crate::relay::pool::CHUNK];
        for asset in assets::ASSETS {
            let mut total = 0;
            for seg in asset.segments {
                let n = super::super::inflate::inflate_segment(&asset.gzip[seg.start..seg.end], &mut out)
                    .unwrap();
                assert_eq!(n, seg.len);
                total += n;
            }
            assert_eq!(total, asset.size, "{}", asset.name);
            assert_eq!(asset.immutable, !asset.name.is_empty());
        }
    }

    #[test]
    fn all_assets_together_stay_within_128_kib_gzipd() {
        let total: usize = assets::ASSETS.iter().map(|a| a.gzip.len()).sum();
        assert!(total <= 128 * 1024, "{total} bytes");
    }

    #[test]
    fn framing_is_allowed_only_to_the_configured_origins() {
        assert!(security_headers(&[]).contains("frame-ancestors 'none'\r\n"));
        let two = ["http://a".to_string(), "https://b:8443".to_string()];
        assert!(security_headers(&two).contains("frame-ancestors http://a https://b:8443\r\n"));
    }
}

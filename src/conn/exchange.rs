//! The exchange phase: a request goes to dockerd and its reply comes back,
//! both relayed concurrently. Each head is written together with whatever
//! body bytes arrived with it; only the rest of a body is spliced.

use std::time::Instant;

use super::tunnel::Tunnel;
use super::{Connection, Ctx, Phase, Request};
use crate::access::auth::{parse_subprotocol, without_token_subprotocols};
use crate::access::gate;
use crate::http::chunked::ChunkedTracker;
use crate::http::request::{RequestBody, RequestHead, Upgrade};
use crate::http::response::{parse_scanned_response, ResponseBody, ResponseHead};
use crate::http::{scan_head, HeadError};
use crate::net::head_reader::HeadReader;
use crate::relay::flow::{Flow, FlowError, Framing};
use crate::relay::pool::{BodyReservation, ByteCounters};

/// What the log line and the tunnel decision need to know of the request.
pub(super) struct Summary {
    cors: Option<String>,
    /// The `dockermand.token.*` subprotocol the client offered (and dockerd
    /// was not shown), to be selected in the 101.
    token_protocol: Option<String>,
    pub(super) method: String,
    pub(super) target: String,
    pub(super) started: Instant,
    keep_alive: bool,
    upgrade: Option<Upgrade>,
    /// attach or exec start: dockerd may hijack with a plain 200.
    hijacks: bool,
    is_head: bool,
    http10: bool,
}

/// What dockerd's reply head said about the rest of the exchange.
struct Reply {
    status: u16,
    tunnel: bool,
    close_client: bool,
    upstream_keep_alive: bool,
}

pub struct Exchange {
    req: Summary,
    connecting: bool,
    up: Flow,
    down: Flow,
    reply: Option<Reply>,
    reader: HeadReader,
    eof_forwarded: bool,
    /// Held until the checked body queued for dockerd has been sent.
    pub(super) body_reservation: Option<BodyReservation>,
}

/// How an exchange ended, for the log line.
enum End {
    Done,
    Aborted(&'static str),
}

impl Connection {
    /// Sends a request (with `body`, when it was read and checked here) to
    /// dockerd and starts relaying.
    pub(super) fn forward(
        &mut self,
        ctx: &mut Ctx,
        req: Request,
        body: Option<Vec<u8>>,
        hijacks: bool,
    ) -> Phase {
        let Request { mut head, cors } = req;
        if !ctx.cfg.is_open() {
            // Our credentials are not dockerd's business (nor its plugins').
            head.headers.retain(|(n, _)| {
                !["authorization", "cookie", gate::BINDING_HEADER]
                    .iter()
                    .any(|ours| n.eq_ignore_ascii_case(ours))
            });
        }
        // A token subprotocol is ours whether or not auth is on: dockerd never
        // sees it, and we answer it ourselves in the 101.
        let token_protocol = head
            .header("sec-websocket-protocol")
            .and_then(parse_subprotocol)
            .map(|(_, protocol)| protocol);
        if token_protocol.is_some() {
            head.headers = std::mem::take(&mut head.headers)
                .into_iter()
                .filter_map(|(name, value)| {
                    if !name.eq_ignore_ascii_case("sec-websocket-protocol") {
                        return Some((name, value));
                    }
                    without_token_subprotocols(&value).map(|rest| (name, rest))
                })
                .collect();
        }
        let connecting = match self.use_upstream(ctx) {
            Ok(connecting) => connecting,
            Err(e) => {
                log::warn!("cannot connect to {}: {e}", ctx.cfg.upstream);
                return self.upstream_unavailable(ctx, &head, "cannot connect to the Docker daemon");
            }
        };
        let copy_only = !ctx.res.splice_enabled;
        let mut framing = match (&body, head.body) {
            (Some(_), _) | (None, RequestBody::None) => Framing::Length(0),
            (None, RequestBody::Length(n)) => Framing::Length(n),
            (None, RequestBody::Chunked) => Framing::Chunked(ChunkedTracker::new()),
        };
        // The body bytes that came with the head go with it, in one write.
        // What may follow an upgrade stays here until dockerd agrees to it:
        // if it does not, those bytes are the next request, to be checked.
        let early = match framing.take_prefix(&self.early) {
            Ok(n) => n,
            Err(e) => {
                ctx.stats.rejected += 1;
                return self.reply_error(ctx, 400, e.message(), true);
            }
        };
        let mut up = Flow::new(framing, copy_only);
        let mut out = head.encode_upstream();
        out.extend_from_slice(&self.early[..early]);
        self.early.drain(..early);
        up.count_copied(early, &mut ctx.res.bytes);
        if let Some(body) = &body {
            out.extend_from_slice(body);
        }
        up.queue_owned(out);
        let summary = Summary {
            hijacks: hijacks && head.method == "POST",
            is_head: head.is_head(),
            http10: head.minor_version == 0,
            keep_alive: head.keep_alive,
            upgrade: head.upgrade,
            method: head.method,
            target: head.target,
            started: ctx.now,
            cors,
            token_protocol,
        };
        self.deadline = None;
        Phase::Exchange(Box::new(Exchange {
            req: summary,
            connecting,
            up,
            down: Flow::new(Framing::Length(0), copy_only),
            reply: None,
            reader: HeadReader::default(),
            eof_forwarded: false,
            body_reservation: None,
        }))
    }

    fn upstream_unavailable(&mut self, ctx: &mut Ctx, head: &RequestHead, why: &'static str) -> Phase {
        ctx.stats.upstream_errors += 1;
        log::info!("{} \"{} {}\" 502 {why}", self.peer, head.method, head.target);
        let close = super::admit::closes_after_reply(head);
        self.reply_error(ctx, 502, why, close)
    }

    pub(super) fn exchange(&mut self, ctx: &mut Ctx, mut ex: Box<Exchange>) -> Phase {
        let Some(back) = self.back.as_mut() else {
            return self.end_exchange(ctx, ex, End::Aborted("no upstream"));
        };
        if ex.connecting {
            if !back.writable {
                return Phase::Exchange(ex);
            }
            match back.stream.take_error() {
                Ok(None) => ex.connecting = false,
                _ => {
                    ctx.stats.upstream_errors += 1;
                    return self.fail_before_reply(ctx, ex, 502, "cannot connect to the Docker daemon");
                }
            }
        }
        loop {
            let Some(back) = self.back.as_mut() else {
                return self.end_exchange(ctx, ex, End::Aborted("no upstream"));
            };
            let mut progress = false;
            if !ex.up.is_finished() {
                match ex.up.pump(&mut self.front, back, ctx.res) {
                    Ok(p) => {
                        progress |= p;
                        if ex.up.is_finished() {
                            ex.body_reservation = None;
                        }
                    }
                    Err(FlowError::Framing(e)) if ex.reply.is_none() => {
                        ctx.stats.rejected += 1;
                        return self.fail_before_reply(ctx, ex, 400, e.message());
                    }
                    Err(FlowError::Write(_)) if ex.reply.is_none() => {
                        ctx.stats.upstream_errors += 1;
                        return self.fail_before_reply(
                            ctx,
                            ex,
                            502,
                            "the Docker daemon closed the connection",
                        );
                    }
                    Err(e) => return self.end_exchange(ctx, ex, End::Aborted(flow_error("request", &e))),
                }
            }
            if ex.reply.is_none() && back.readable {
                match read_response_head(back, ctx, &mut ex) {
                    Ok(p) => progress |= p,
                    Err(why) => {
                        ctx.stats.upstream_errors += 1;
                        return self.fail_before_reply(ctx, ex, 502, why);
                    }
                }
            }
            match ex.down.pump(back, &mut self.front, ctx.res) {
                Ok(p) => progress |= p,
                Err(e) => return self.end_exchange(ctx, ex, End::Aborted(flow_error("response", &e))),
            }
            // A client that hangs up while waiting cancels the request in
            // dockerd too (as Go's server does), which ends endless streams.
            let tunnel_pending = ex.req.upgrade.is_some() || ex.req.hijacks;
            if self.front.read_closed && ex.up.is_finished() && !ex.eof_forwarded && !tunnel_pending {
                back.shutdown_write();
                ex.eof_forwarded = true;
                progress = true;
            }
            if ex.reply.is_some() && ex.down.is_finished() {
                let tunnel = ex.reply.as_ref().is_some_and(|r| r.tunnel);
                if ex.up.is_finished() || !tunnel {
                    return self.end_exchange(ctx, ex, End::Done);
                }
            }
            if !progress {
                return Phase::Exchange(ex);
            }
        }
    }

    /// Something went wrong before any byte of a reply reached the client:
    /// the client gets a clear error instead of a torn connection.
    fn fail_before_reply(
        &mut self,
        ctx: &mut Ctx,
        ex: Box<Exchange>,
        status: u16,
        why: &'static str,
    ) -> Phase {
        self.drop_upstream();
        if ex.reply.is_some() || ex.down.spliced + ex.down.copied > 0 {
            log_exchange(&self.peer, &ex, End::Aborted(why));
            return Phase::Closed;
        }
        log::info!(
            "{} \"{} {}\" {status} {why}",
            self.peer,
            ex.req.method,
            ex.req.target
        );
        self.reply_error(ctx, status, why, true)
    }

    fn end_exchange(&mut self, ctx: &mut Ctx, ex: Box<Exchange>, end: End) -> Phase {
        let aborted = matches!(end, End::Aborted(_));
        log_exchange(&self.peer, &ex, end);
        let Some(reply) = ex.reply.as_ref().filter(|_| !aborted) else {
            return Phase::Closed;
        };
        if reply.tunnel {
            let mut up = Flow::new(Framing::UntilEof, !ctx.res.splice_enabled);
            // The client's first tunnel bytes may have come with its head.
            let early = std::mem::take(&mut self.early);
            up.count_copied(early.len(), &mut ctx.res.bytes);
            up.queue_owned(early);
            return Phase::Tunnel(Box::new(Tunnel::new(ex.req, up, ctx.res.splice_enabled)));
        }
        let request_done = ex.up.is_finished();
        if !(reply.upstream_keep_alive && request_done && !ex.eof_forwarded) || ctx.shutting_down {
            self.drop_upstream();
        } else if let Some(mut back) = self.back.take() {
            // From now on any input or hang-up from dockerd means "stale".
            back.readable = false;
            self.idle_back = Some(back);
        }
        if reply.close_client || !request_done || self.front.read_closed || ctx.shutting_down {
            // An upgrade or hijack dockerd refused may still have its first
            // tunnel bytes on the way.
            let client_closes = !ex.req.keep_alive && ex.req.upgrade.is_none() && !ex.req.hijacks;
            self.finish(ctx, client_closes && request_done)
        } else {
            self.next_request(ctx)
        }
    }
}

/// Reads dockerd's reply head, with the body bytes that came with it, in
/// one read; interim replies are queued for the client and reading goes
/// on. Returns whether anything moved.
fn read_response_head(
    back: &mut crate::net::socket::Side,
    ctx: &mut Ctx,
    ex: &mut Exchange,
) -> Result<bool, &'static str> {
    let limit = ctx.cfg.max_head_bytes;
    let Some(got) = ex.reader.read(back, &mut ctx.res.scratch, limit)? else {
        return Ok(false);
    };
    let (len, mut scanned) = (got.len, got.kept);
    let mut at = 0;
    loop {
        let buf = &ctx.res.scratch[at..len];
        let head_len = match scan_head(buf, scanned, limit) {
            Ok(Some(head_len)) => head_len,
            Ok(None) => {
                // Rare: dockerd writes a head in one piece.
                ex.reader.keep(buf);
                return Ok(true);
            }
            Err(HeadError::TooLarge) => return Err("reply head from the Docker daemon is too large"),
            Err(_) => return Err("malformed reply from the Docker daemon"),
        };
        let head = parse_scanned_response(&buf[..head_len], ctx.cfg.max_headers, ex.req.is_head)
            .map_err(|_| "malformed reply from the Docker daemon")?;
        at += head_len;
        scanned = 0;
        if head.is_interim() {
            if !ex.req.http10 {
                ex.down.queue(&head.encode_for_client(false, ""));
            }
            continue;
        }
        let rest = &ctx.res.scratch[at..len];
        return accept_reply(ex, &head, rest, ctx.shutting_down, &mut ctx.res.bytes);
    }
}

/// Queues the client's reply head and the body bytes read with it, and sets
/// the framing of the rest.
fn accept_reply(
    ex: &mut Exchange,
    head: &ResponseHead,
    rest: &[u8],
    shutting_down: bool,
    bytes: &mut ByteCounters,
) -> Result<bool, &'static str> {
    let upgraded = head.status == 101;
    if upgraded && ex.req.upgrade.is_none() {
        return Err("unexpected protocol switch from the Docker daemon");
    }
    let hijacked = ex.req.hijacks && head.status == 200 && head.body == ResponseBody::UntilClose;
    let tunnel = upgraded || hijacked;
    let close_client = !tunnel
        && (!ex.req.keep_alive || !head.keep_alive && head.body == ResponseBody::UntilClose || shutting_down);
    let mut ours = ex.req.cors.as_deref().map(gate::cors_headers).unwrap_or_default();
    // A browser fails a WebSocket whose handshake selects none of the
    // protocols it offered; dockerd was only offered the others.
    if let Some(protocol) = ex.req.token_protocol.as_deref() {
        if upgraded && head.header("sec-websocket-protocol").is_none() {
            ours.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
        }
    }
    let mut framing = match head.body {
        // A tunnel's first bytes go out with the head; the tunnel relays the rest.
        _ if tunnel => Framing::UntilEof,
        ResponseBody::None => Framing::Length(0),
        ResponseBody::Length(n) => Framing::Length(n),
        ResponseBody::Chunked => Framing::Chunked(ChunkedTracker::new()),
        ResponseBody::UntilClose => Framing::UntilEof,
    };
    let body = framing
        .take_prefix(rest)
        .map_err(|_| "invalid chunked framing from the Docker daemon")?;
    // dockerd never sends more than one reply: bytes after it mean the
    // connection cannot be trusted with another request.
    let extra = body < rest.len();
    let mut out = head.encode_for_client(close_client, &ours);
    out.extend_from_slice(&rest[..body]);
    ex.down.queue_owned(out);
    ex.down.count_copied(body, bytes);
    ex.down
        .set_framing(if tunnel { Framing::Length(0) } else { framing });
    ex.reply = Some(Reply {
        status: head.status,
        tunnel,
        close_client,
        upstream_keep_alive: head.keep_alive && !tunnel && !extra,
    });
    Ok(true)
}

fn log_exchange(peer: &str, ex: &Exchange, end: End) {
    let status = ex.reply.as_ref().map_or(0, |r| r.status);
    let (spliced, copied) = (ex.up.spliced + ex.down.spliced, ex.up.copied + ex.down.copied);
    let path = match (spliced, copied) {
        (0, 0) => "none",
        (_, 0) => "splice",
        (0, _) => "copy",
        _ => "splice+copy",
    };
    let outcome = match end {
        End::Done => "",
        End::Aborted(why) => why,
    };
    log::info!(
        "{peer} \"{} {}\" {status} up={} down={} {}ms {path} {outcome}",
        ex.req.method,
        ex.req.target,
        ex.up.spliced + ex.up.copied,
        ex.down.spliced + ex.down.copied,
        // As u64: formatting a u128 would link 2 KB for nothing.
        ex.req.started.elapsed().as_millis() as u64,
    );
}

pub(super) fn flow_error(what: &'static str, e: &FlowError) -> &'static str {
    match (what, e) {
        ("request", FlowError::Truncated) => "client closed during the request body",
        ("response", FlowError::Truncated) => "the Docker daemon closed during the reply",
        (_, FlowError::Framing(_)) => "invalid chunked framing",
        (_, FlowError::Read(_)) => "read error",
        (_, FlowError::Write(_)) => "write error",
        (_, FlowError::Truncated) => "closed",
    }
}

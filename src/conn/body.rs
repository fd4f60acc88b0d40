//! The body phase: a body that must be seen whole before anything is
//! forwarded (a checked role's JSON, a login) is read into memory, within
//! the shared body budget, then checked by the policy and forwarded with a
//! length, or handed to the login.

use std::time::Instant;

use super::admit::Purpose;
use super::{Connection, Ctx, Phase, Request};
use crate::access::gate::Refusal;
use crate::access::policy::check_body;
use crate::http::chunked::{self, ChunkedTracker};
use crate::http::request::RequestBody;
use crate::looptime::Work;
use crate::net::outbox::Outbox;
use crate::relay::flow::Framing;
use crate::relay::pool::{largest_raw_body, BodyReservation, CHUNK};

pub struct BodyRead {
    req: Request,
    purpose: Purpose,
    /// Allocated once at its largest size, `max_raw`: it never grows.
    raw: Vec<u8>,
    max_raw: usize,
    /// A checked body's share of the body budget.
    reservation: Option<BodyReservation>,
    framing: Framing,
    /// `100 Continue` still to be written.
    interim: Outbox,
}

impl BodyRead {
    fn is_complete(&self) -> bool {
        match &self.framing {
            Framing::Length(n) => *n == 0,
            Framing::Chunked(t) => t.is_done(),
            Framing::UntilEof => true,
        }
    }

    /// Takes the body's bytes from the front of `input` (bytes that came
    /// with the head); returns how many it took.
    fn take(&mut self, input: &[u8]) -> Result<usize, chunked::ChunkError> {
        let room = self.max_raw - self.raw.len();
        let used = self.framing.take_prefix(&input[..input.len().min(room)])?;
        self.raw.extend_from_slice(&input[..used]);
        Ok(used)
    }
}

impl Connection {
    /// Reads a whole (bounded) request body before deciding on it.
    pub(super) fn read_body(&mut self, ctx: &mut Ctx, req: Request, purpose: Purpose, limit: usize) -> Phase {
        let (framing, max_raw) = match req.head.body {
            RequestBody::None => (Framing::Length(0), 0),
            RequestBody::Length(n) if n > limit as u64 => {
                let r = Refusal {
                    route: purpose.route(),
                    ..Refusal::new(413, "body_size", "Content-Length", "request body too large")
                };
                let who = purpose.principal().to_string();
                return self.refuse(ctx, &req, &who, r);
            }
            RequestBody::Length(n) => (Framing::Length(n), n as usize),
            RequestBody::Chunked => (Framing::Chunked(ChunkedTracker::new()), largest_raw_body(limit)),
        };
        // Checked bodies share one budget, taken before the first byte is
        // read; a login body is small. A client that finds the budget spent
        // is told so at once rather than queued: a queue would hold its
        // connection while whoever holds the budget has the header timeout.
        let reservation = match &purpose {
            Purpose::Check { .. } => match ctx.res.body_budget.reserve(max_raw) {
                Some(r) => Some(r),
                None => {
                    log::warn!(
                        "{} \"{} {}\" 503 body budget of {} bytes spent",
                        self.peer,
                        req.head.method,
                        req.head.target,
                        ctx.res.body_budget.limit
                    );
                    let why = "too many request bodies are being checked; try again";
                    return self.reply_error(ctx, 503, why, true);
                }
            },
            Purpose::Login => None,
        };
        let expects = req
            .head
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case(b"100-continue"));
        self.deadline = Some(ctx.now + ctx.cfg.header_timeout);
        let mut b = Box::new(BodyRead {
            req,
            purpose,
            raw: Vec::with_capacity(max_raw),
            max_raw,
            reservation,
            framing,
            interim: Outbox::default(),
        });
        if expects {
            b.interim.push(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        match b.take(&self.early) {
            Ok(used) => drop(self.early.drain(..used)),
            Err(e) => {
                ctx.stats.rejected += 1;
                return self.reply_error(ctx, 400, e.message(), true);
            }
        }
        Phase::Body(b)
    }

    pub(super) fn body(&mut self, ctx: &mut Ctx, mut b: Box<BodyRead>) -> Phase {
        if !b.is_complete() && b.interim.flush(&mut self.front).is_err() {
            return Phase::Closed;
        }
        loop {
            if b.is_complete() {
                if matches!(b.purpose, Purpose::Check { .. }) && *ctx.slow_spent >= super::SLOW_SLICE {
                    self.rerun = true;
                    return Phase::Body(b);
                }
                return self.body_complete(ctx, b);
            }
            if !self.front.readable {
                return Phase::Body(b);
            }
            if b.raw.len() == b.max_raw {
                let r = Refusal {
                    route: b.purpose.route(),
                    ..Refusal::new(413, "body_size", "body", "request body too large")
                };
                let who = b.purpose.principal().to_string();
                return self.refuse(ctx, &b.req, &who, r);
            }
            // Read no further than the body may go: what follows it is the
            // next request's, and stays in the socket.
            let want = match &b.framing {
                Framing::Length(n) => (*n).min(CHUNK as u64) as usize,
                _ => (b.max_raw - b.raw.len()).min(CHUNK),
            };
            let scratch = &mut ctx.res.scratch[..want];
            let peek = matches!(b.framing, Framing::Chunked(_));
            let got = if peek {
                self.front.peek(scratch)
            } else {
                self.front.read(scratch)
            };
            let n = match got {
                Ok(Some(0)) | Err(_) => return Phase::Closed,
                Ok(Some(n)) => n,
                Ok(None) => continue,
            };
            let used = match b.take(&ctx.res.scratch[..n]) {
                Ok(used) => used,
                Err(e) => {
                    ctx.stats.rejected += 1;
                    return self.reply_error(ctx, 400, e.message(), true);
                }
            };
            // Chunked input was only peeked at: take exactly what was used.
            if peek && self.front.consume(&mut ctx.res.scratch, used).is_err() {
                return Phase::Closed;
            }
        }
    }

    fn body_complete(&mut self, ctx: &mut Ctx, b: Box<BodyRead>) -> Phase {
        let BodyRead {
            mut req,
            purpose,
            raw,
            reservation,
            ..
        } = *b;
        let body = if req.head.body == RequestBody::Chunked {
            let decoded = chunked::decode(&raw);
            drop(raw);
            match decoded {
                Ok(body) => body,
                Err(e) => return self.reply_error(ctx, 400, e.message(), true),
            }
        } else {
            raw
        };
        let Purpose::Check {
            kind,
            policy,
            principal,
            route,
        } = purpose
        else {
            return self.login(ctx, req, &body);
        };
        let content_type = req.head.header("content-type").map(<[u8]>::to_vec);
        let started = Instant::now();
        let verdict = check_body(kind, content_type.as_deref(), &body, &policy);
        let took = started.elapsed();
        *ctx.slow_spent += took;
        ctx.stats.loop_time.work(Work::Policy, took);
        if let Err(d) = verdict {
            let r = Refusal::denied(route, d);
            if !ctx.cfg.dry_run {
                return self.refuse(ctx, &req, &principal, r);
            }
            self.audit(ctx, &req, &principal, &r, true);
        } else {
            ctx.stats.allowed += 1;
        }
        // dockerd gets exactly the bytes we checked, with a length.
        req.head.headers.retain(|(n, _)| {
            !(n.eq_ignore_ascii_case("content-length")
                || n.eq_ignore_ascii_case("transfer-encoding")
                || n.eq_ignore_ascii_case("expect"))
        });
        req.head
            .headers
            .push(("Content-Length".into(), body.len().to_string().into_bytes()));
        req.head.body = RequestBody::Length(body.len() as u64);
        let mut next = self.forward(ctx, req, Some(body), false);
        if let Phase::Exchange(ex) = &mut next {
            ex.body_reservation = reservation;
        }
        next
    }
}

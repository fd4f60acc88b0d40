//! The head phase: a request head is read once, into the loop's scratch
//! buffer, searched only where it is new, parsed, admitted, and acted on.

use super::admit::{admit, closes_after_reply, Admission, View};
use super::{Connection, Ctx, Phase, Request};
use crate::access::gate;
use crate::access::rpcd::UbusCall;
use crate::http::request::{parse_scanned_request, Limits, RequestBody, RequestHead};
use crate::http::{scan_head, HeadError};

impl Connection {
    pub(super) fn read_head(&mut self, ctx: &mut Ctx, started: bool) -> Phase {
        if let Some(back) = &self.idle_back {
            // An idle upstream that speaks or hangs up is stale.
            if back.readable || back.read_closed {
                self.drop_upstream();
            }
        }
        if ctx.shutting_down && !started && self.early.is_empty() {
            return Phase::Closed;
        }
        let limit = ctx.cfg.max_head_bytes.min(ctx.res.scratch.len());
        let mut len = self.early.len();
        if len > limit {
            // The limit was lowered by a reload while these bytes waited.
            return self.bad_head(ctx, HeadError::TooLarge);
        }
        let scratch = &mut ctx.res.scratch;
        scratch[..len].copy_from_slice(&self.early);
        let mut scan = scan_head(&scratch[..len], self.scanned, limit);
        if matches!(scan, Ok(None)) && self.front.readable {
            match self.front.read_all_there_is(&mut scratch[len..limit]) {
                Ok(Some(0)) | Err(_) => return Phase::Closed,
                Ok(None) => {}
                Ok(Some(n)) => {
                    self.scanned = self.scanned.max(len);
                    len += n;
                    scan = scan_head(&scratch[..len], self.scanned, limit);
                }
            }
        }
        let head_len = match scan {
            Ok(Some(head_len)) => head_len,
            Ok(None) => return self.partial_head(ctx, started, len),
            Err(e) => return self.bad_head(ctx, e),
        };
        let limits = Limits {
            max_head_bytes: ctx.cfg.max_head_bytes,
            max_headers: ctx.cfg.max_headers,
        };
        let parsed = parse_scanned_request(&ctx.res.scratch[..head_len], &limits);
        self.keep_early(ctx, head_len, len);
        match parsed {
            Ok(head) => {
                self.served = true;
                self.start_request(ctx, head)
            }
            Err(e) => self.bad_head(ctx, e),
        }
    }

    /// Keeps `scratch[from..to]`, the bytes after a head, for what comes next.
    fn keep_early(&mut self, ctx: &Ctx, from: usize, to: usize) {
        self.scanned = 0;
        if from == to {
            // Nothing to keep: give back what a partial head may have used.
            self.early = Vec::new();
        } else {
            self.early.clear();
            self.early.extend_from_slice(&ctx.res.scratch[from..to]);
        }
    }

    /// The first `len` bytes of scratch are a head that has not ended yet
    /// (and passed the scan so far).
    fn partial_head(&mut self, ctx: &mut Ctx, started: bool, len: usize) -> Phase {
        if len == self.early.len() {
            // Nothing new since the last look.
            self.scanned = len;
            return Phase::Head {
                started: started || len > 0,
            };
        }
        self.early.clear();
        self.early.extend_from_slice(&ctx.res.scratch[..len]);
        self.scanned = len;
        if !started {
            // A head gets the header timeout from accept or from the end of
            // the last request, never more: its first byte only shortens a
            // keep-alive wait.
            let head_deadline = ctx.now + ctx.cfg.header_timeout;
            self.deadline = Some(self.deadline.map_or(head_deadline, |d| d.min(head_deadline)));
        }
        Phase::Head { started: true }
    }

    fn bad_head(&mut self, ctx: &mut Ctx, e: HeadError) -> Phase {
        ctx.stats.rejected += 1;
        log::info!("{} rejected request: {}", self.peer, e.message());
        self.reply_error(ctx, e.status(), e.message(), true)
    }

    fn start_request(&mut self, ctx: &mut Ctx, head: RequestHead) -> Phase {
        ctx.stats.requests += 1;
        self.answering_head = head.is_head();
        // An upgrade's first tunnel bytes may follow its head at once.
        self.said_close = !head.keep_alive && head.body == RequestBody::None && head.upgrade.is_none();
        let admission = admit(&head, &View::of(ctx, self.peer_id, self.cert.as_deref()));
        // A ticket works once, whatever the answer to the request.
        if let Some(ticket) = gate::ticket(&head) {
            ctx.sessions.remove(&ticket);
        }
        let req = Request {
            cors: gate::allowed_origin(&head, &ctx.cfg.cors_origins),
            head,
        };
        self.act(ctx, req, admission)
    }

    /// Carries out an admission: the only place its answers turn into phases.
    pub(super) fn act(&mut self, ctx: &mut Ctx, req: Request, admission: Admission) -> Phase {
        match admission {
            Admission::Forward {
                principal,
                hijacks,
                dry_run,
            } => {
                match dry_run {
                    Some(r) => self.audit(ctx, &req, &principal, &r, true),
                    None => ctx.stats.allowed += 1,
                }
                self.forward(ctx, req, None, hijacks)
            }
            Admission::ReadBody { purpose, limit } => self.read_body(ctx, req, purpose, limit),
            Admission::AskRpcd { session } if ctx.ubus.recently_refused(&session, ctx.now) => {
                self.unauthorized(ctx, &req, "invalid or expired credentials")
            }
            Admission::AskRpcd { session } => {
                let call = UbusCall::Access {
                    session,
                    function: "write",
                };
                self.ask_rpcd(ctx, req, call, None)
            }
            Admission::Reply { reply, close } => {
                self.log_local(&req, reply.status);
                self.reply_to(ctx, &req, reply, close)
            }
            Admission::Refuse { principal, refusal } => self.refuse(ctx, &req, &principal, refusal),
            Admission::Endpoint { endpoint, principal } => {
                let reply = self.endpoint(ctx, &req, endpoint, principal);
                self.log_local(&req, reply.status);
                let close = closes_after_reply(&req.head);
                self.reply_to(ctx, &req, reply, close)
            }
            Admission::OpenConsole {
                principal,
                exec,
                handshake,
            } => self.open_console(ctx, req, principal, exec, handshake),
            #[cfg(feature = "ui")]
            Admission::Ui(answer) => self.ui_reply(ctx, &req, answer),
        }
    }
}

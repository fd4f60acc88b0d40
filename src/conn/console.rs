//! The console phases: a browser's WebSocket bridged to a `docker exec`
//! (or the protocol test echo), then, once the browser is gone, the reap
//! phase that ends the exec.

use mio::Token;

use super::{connect, Connection, Ctx, Phase, Request};
use crate::console::reaper::Reaper;
use crate::console::{Console, ExecRequest, Io, Keepalive, Outcome};
use crate::net::upstream::UpstreamAddr;

impl Connection {
    pub(super) fn open_console(
        &mut self,
        ctx: &mut Ctx,
        req: Request,
        principal: String,
        exec: Option<ExecRequest>,
        handshake: Vec<u8>,
    ) -> Phase {
        if !self.early.is_empty() {
            // RFC 6455 §4.1: no frames before the handshake's answer.
            return self.reply_error(
                ctx,
                400,
                "data sent before the WebSocket handshake completed",
                true,
            );
        }
        let Some(exec) = exec else {
            self.log_local(&req, 101);
            self.deadline = None;
            let slot = ctx.stats.consoles.hold();
            return Phase::Console(Box::new(Console::echo(handshake, slot, ctx.res)));
        };
        if self.use_upstream(ctx).is_err() {
            ctx.stats.upstream_errors += 1;
            return self.reply_error(ctx, 502, "cannot connect to the Docker daemon", true);
        }
        log::info!(
            "{} console {} {:?} tty={} for {}",
            self.peer,
            exec.container,
            exec.cmd,
            exec.tty,
            principal
        );
        ctx.stats.allowed += 1;
        let local_pids = matches!(ctx.cfg.upstream, UpstreamAddr::Unix(_));
        let keepalive = Keepalive::new(ctx.cfg.console_ping, ctx.cfg.console_idle, ctx.now);
        let slot = ctx.stats.consoles.hold();
        let console = Console::exec(exec, handshake, local_pids, keepalive, slot, ctx.res);
        self.deadline = console.deadline();
        Phase::Console(Box::new(console))
    }

    pub(super) fn console(&mut self, ctx: &mut Ctx, mut c: Box<Console>) -> Phase {
        let (registry, upstream) = (ctx.registry, &ctx.cfg.upstream);
        let aux_token = Token(self.base_token.0 + 2);
        let mut io = Io {
            front: &mut self.front,
            back: &mut self.back,
            res: ctx.res,
            connect_aux: &mut || connect(registry, upstream, aux_token),
            now: ctx.now,
        };
        match c.drive(&mut io) {
            Outcome::Continue => {
                self.deadline = c.deadline();
                Phase::Console(c)
            }
            Outcome::Fail(status, message) => {
                self.drop_upstream();
                self.reply_error(ctx, status, &message, true)
            }
            Outcome::Done => {
                let reaper = c.finish(&ctx.stats.consoles_ending, ctx.now);
                self.drop_upstream();
                match reaper {
                    // The client is done with: only the exec is left.
                    Some(r) => {
                        self.front.shutdown_write();
                        let _ = ctx.registry.deregister(&mut self.front.stream);
                        Phase::Reap(Box::new(r))
                    }
                    None => self.linger_phase(ctx),
                }
            }
        }
    }

    pub(super) fn reap(&mut self, ctx: &mut Ctx, mut r: Box<Reaper>) -> Phase {
        let (registry, upstream) = (ctx.registry, &ctx.cfg.upstream);
        let aux_token = Token(self.base_token.0 + 2);
        let done = r.drive(ctx.now, &mut ctx.res.scratch, &mut || {
            connect(registry, upstream, aux_token)
        });
        if done {
            return Phase::Closed;
        }
        self.deadline = Some(r.deadline());
        Phase::Reap(r)
    }
}

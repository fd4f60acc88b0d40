//! The tunnel phase: after an upgrade or a hijack, bytes go both ways until
//! both sides are done, and a half-close passes through.

use super::exchange::{flow_error, Summary};
use super::{Connection, Ctx, Phase};
use crate::relay::flow::{Flow, Framing};

pub struct Tunnel {
    req: Summary,
    up: Flow,
    down: Flow,
}

impl Tunnel {
    /// `up` may already hold client bytes that came with the request head.
    pub(super) fn new(req: Summary, up: Flow, splice_enabled: bool) -> Tunnel {
        Tunnel {
            req,
            up,
            down: Flow::new(Framing::UntilEof, !splice_enabled),
        }
    }
}

impl Connection {
    pub(super) fn tunnel(&mut self, ctx: &mut Ctx, mut t: Box<Tunnel>) -> Phase {
        let Some(back) = self.back.as_mut() else {
            return Phase::Closed;
        };
        loop {
            let pumped =
                t.up.pump(&mut self.front, back, ctx.res)
                    .and_then(|a| Ok(a | t.down.pump(back, &mut self.front, ctx.res)?));
            let progress = match pumped {
                Ok(p) => p,
                Err(e) => {
                    log::debug!(
                        "{} tunnel {} ended: {}",
                        self.peer,
                        t.req.target,
                        flow_error("tunnel", &e)
                    );
                    return Phase::Closed;
                }
            };
            // Half-close passes through: the other side still reads.
            if t.up.is_finished() {
                back.shutdown_write();
            }
            if t.down.is_finished() {
                self.front.shutdown_write();
            }
            if t.up.is_finished() && t.down.is_finished() {
                log::debug!(
                    "{} tunnel {} closed after {}s: {} bytes in, {} out",
                    self.peer,
                    t.req.target,
                    t.req.started.elapsed().as_secs(),
                    t.up.spliced + t.up.copied,
                    t.down.spliced + t.down.copied
                );
                return Phase::Closed;
            }
            if !progress {
                return Phase::Tunnel(t);
            }
        }
    }
}

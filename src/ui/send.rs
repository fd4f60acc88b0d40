//! Writes a UI asset's body from the binary's read-only data: the stored
//! gzip bytes as they are, or, for a client without gzip, one segment at a
//! time inflated into a pooled buffer. No other memory is taken.

use std::io;

use super::assets::Asset;
use super::inflate::inflate_segment;
use crate::net::socket::Side;
use crate::relay::pool::{Buffer, Resources};

pub struct AssetBody {
    asset: &'static Asset,
    gzip: bool,
    /// Gzip bytes written so far.
    sent: usize,
    /// The next segment to inflate.
    segment: usize,
    /// Inflated bytes not yet written.
    buffer: Option<Buffer>,
}

/// How far a write got.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    Done,
    /// The socket takes no more now.
    Blocked,
    /// A segment was inflated and sent: the next waits for the next loop
    /// iteration, so that one client never holds the loop for long.
    Again,
}

impl AssetBody {
    pub fn new(asset: &'static Asset, gzip: bool) -> AssetBody {
        AssetBody {
            asset,
            gzip,
            sent: 0,
            segment: 0,
            buffer: None,
        }
    }

    pub fn write(&mut self, side: &mut Side, res: &Resources) -> io::Result<Progress> {
        if self.gzip {
            self.sent += side.send_ready(&self.asset.gzip[self.sent..])?;
            return Ok(if self.sent == self.asset.gzip.len() {
                Progress::Done
            } else {
                Progress::Blocked
            });
        }
        let mut inflated = false;
        loop {
            let buffer = self.buffer.get_or_insert_with(|| res.take_buffer());
            if buffer.is_empty() {
                let Some(seg) = self.asset.segments.get(self.segment) else {
                    self.buffer = None;
                    return Ok(Progress::Done);
                };
                if inflated {
                    return Ok(Progress::Again);
                }
                let n = inflate_segment(&self.asset.gzip[seg.start..seg.end], &mut buffer.data)
                    .ok()
                    .filter(|&n| n == seg.len)
                    .ok_or_else(|| io::Error::other("a UI asset does not inflate"))?;
                (buffer.start, buffer.end) = (0, n);
                self.segment += 1;
                inflated = true;
            }
            buffer.start += side.send_ready(&buffer.data[buffer.start..buffer.end])?;
            if !buffer.is_empty() {
                return Ok(Progress::Blocked);
            }
        }
    }
}

//! Writes a UI asset's body from the binary's read-only data: the stored
//! gzip bytes as they are, or, for a client without gzip, one segment at a
//! time inflated into a pooled buffer. No other memory is taken.

use std::io;
use std::time::{Duration, Instant};

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
    /// The next segment waits for the next loop iteration: this one has
    /// spent its slice of CPU-bound work.
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

    /// Writes what the socket takes. Inflating a segment is CPU-bound work:
    /// it happens only while `spent` (this loop iteration's) is under
    /// `slice`, and adds to it.
    pub fn write(
        &mut self,
        side: &mut Side,
        res: &Resources,
        spent: &mut Duration,
        slice: Duration,
    ) -> io::Result<Progress> {
        if self.gzip {
            self.sent += side.send_ready(&self.asset.gzip[self.sent..])?;
            return Ok(if self.sent == self.asset.gzip.len() {
                Progress::Done
            } else {
                Progress::Blocked
            });
        }
        loop {
            let buffer = self.buffer.get_or_insert_with(|| res.take_buffer());
            if buffer.is_empty() {
                let Some(seg) = self.asset.segments.get(self.segment) else {
                    self.buffer = None;
                    return Ok(Progress::Done);
                };
                if *spent >= slice {
                    return Ok(Progress::Again);
                }
                let started = Instant::now();
                let inflated = inflate_segment(&self.asset.gzip[seg.start..seg.end], &mut buffer.data);
                *spent += started.elapsed();
                let n = inflated
                    .ok()
                    .filter(|&n| n == seg.len)
                    .ok_or_else(|| io::Error::other("a UI asset does not inflate"))?;
                (buffer.start, buffer.end) = (0, n);
                self.segment += 1;
            }
            buffer.start += side.send_ready(&buffer.data[buffer.start..buffer.end])?;
            if !buffer.is_empty() {
                return Ok(Progress::Blocked);
            }
        }
    }
}

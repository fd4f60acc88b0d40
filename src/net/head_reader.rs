//! Reading a reply from dockerd: into the loop's scratch buffer, in one
//! read with whatever came after the head, and with the bytes of a reply
//! that has not all arrived kept between reads. The exchange and the
//! console's own calls read their replies through it.

use crate::net::socket::Side;

#[derive(Default)]
pub struct HeadReader {
    kept: Vec<u8>,
}

/// What a read put at the front of the scratch buffer.
pub struct Got {
    /// Bytes now at the front: those kept from before, then the new ones.
    pub len: usize,
    /// How many of them were kept from before (and looked at already).
    pub kept: usize,
}

impl HeadReader {
    /// Puts the kept bytes at the front of `scratch` and reads after them,
    /// up to `limit` bytes in all. `Ok(None)`: nothing new has arrived.
    pub fn read(
        &mut self,
        side: &mut Side,
        scratch: &mut [u8],
        limit: usize,
    ) -> Result<Option<Got>, &'static str> {
        let kept = self.kept.len();
        let limit = limit.min(scratch.len());
        if kept >= limit {
            return Err("reply from the Docker daemon too large");
        }
        scratch[..kept].copy_from_slice(&self.kept);
        let n = match side.read_all_there_is(&mut scratch[kept..limit]) {
            Ok(Some(0)) => return Err("the Docker daemon closed the connection without a reply"),
            Ok(Some(n)) => n,
            Ok(None) => return Ok(None),
            Err(_) => return Err("error reading from the Docker daemon"),
        };
        self.kept = Vec::new();
        Ok(Some(Got { len: kept + n, kept }))
    }

    /// Keeps bytes that are not a whole reply yet for the next read.
    pub fn keep(&mut self, bytes: &[u8]) {
        self.kept.clear();
        self.kept.extend_from_slice(bytes);
    }
}

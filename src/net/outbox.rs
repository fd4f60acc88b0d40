//! Bytes waiting to go out on a socket: replies made here, heads and
//! interim replies queued by a flow, a console's calls to dockerd.

use std::io;

use crate::net::socket::Side;

#[derive(Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    written: usize,
}

impl Outbox {
    pub fn new(bytes: Vec<u8>) -> Outbox {
        Outbox { bytes, written: 0 }
    }

    /// Adds bytes after whatever is still unwritten.
    pub fn push(&mut self, more: &[u8]) {
        if self.is_empty() {
            self.bytes.clear();
            self.written = 0;
        }
        self.bytes.extend_from_slice(more);
    }

    /// `push` for bytes already in a vector of their own: an empty outbox
    /// takes the vector instead of copying it.
    pub fn push_owned(&mut self, more: Vec<u8>) {
        if self.is_empty() {
            *self = Outbox::new(more);
        } else {
            self.bytes.extend_from_slice(&more);
        }
    }

    /// Everything pushed has been written.
    pub fn is_empty(&self) -> bool {
        self.written == self.bytes.len()
    }

    /// Writes as much as `side` takes now; `Ok(true)` when any byte went.
    /// Once everything is written the memory is given back, so an outbox
    /// that lives as long as a tunnel does not keep a head's worth of it.
    pub fn flush(&mut self, side: &mut Side) -> io::Result<bool> {
        let sent = side.send_ready(&self.bytes[self.written..])?;
        self.written += sent;
        if self.is_empty() && self.bytes.capacity() > 0 {
            *self = Outbox::default();
        }
        Ok(sent > 0)
    }
}

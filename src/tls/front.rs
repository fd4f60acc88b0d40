//! One TLS client: rustls runs the handshake, then decrypted bytes go to
//! an ordinary connection through a socket pair and its replies come back
//! encrypted, so a request over TLS takes exactly the path (access, relay,
//! consoles) a plain one does.

use std::io::{self, BufRead};
use std::time::Instant;

use rustls::ServerConnection;

use crate::net::socket::Side;
use crate::tls::cert_names::{cert_names, CertNames};

/// What the front needs next.
#[derive(Debug)]
pub enum Step {
    /// Nothing until the next event or deadline.
    Wait,
    /// The handshake just ended, with the client's verified certificate if
    /// it showed one: its connection must know before any request arrives.
    Established(Option<CertNames>),
    /// Finished, or failed: drop it.
    Close,
}

pub struct Front {
    /// The client's TCP socket, carrying records.
    pub tcp: Side,
    /// Our end of the socket pair; the connection holds the other.
    pub inner: Side,
    tls: Box<ServerConnection>,
    established: bool,
    /// The client will send nothing more (close_notify, or EOF): the pair's
    /// write side is shut so the connection sees the same half-close.
    client_done: bool,
    /// The connection will send nothing more: close_notify is queued.
    conn_done: bool,
    /// The connection closed its end: nothing can reach it any more.
    pub conn_gone: bool,
    /// Handshake deadline, then the time a departed connection's last
    /// bytes get to reach the client.
    pub deadline: Option<Instant>,
}

/// `Side` as the reader and writer rustls moves records with.
struct Wire<'a>(&'a mut Side);

impl io::Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }
}

impl io::Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Front {
    pub fn new(tcp: Side, inner: Side, tls: ServerConnection, handshake_deadline: Instant) -> Front {
        Front {
            tcp,
            inner,
            tls: Box::new(tls),
            established: false,
            client_done: false,
            conn_done: false,
            conn_gone: false,
            deadline: Some(handshake_deadline),
        }
    }

    pub fn is_handshaking(&self) -> bool {
        !self.established
    }

    /// Moves every byte readiness allows, in both directions. `scratch`
    /// carries the connection's bytes on their way into records.
    pub fn drive(&mut self, scratch: &mut [u8]) -> Step {
        match self.pump(scratch) {
            Ok(step) => step,
            Err(e) => {
                log::debug!("tls: {e}");
                // An alert rustls queued (bad certificate, say) tells the
                // client why; a socket that takes nothing now gets nothing.
                let _ = self.flush_records();
                Step::Close
            }
        }
    }

    fn pump(&mut self, scratch: &mut [u8]) -> io::Result<Step> {
        loop {
            let mut progress = self.flush_records()?;
            progress |= self.receive_records()?;
            if !self.established && !self.tls.is_handshaking() {
                self.established = true;
                self.deadline = None;
                return Ok(Step::Established(self.client_names()));
            }
            if !self.established {
                // The client gave up, or its connection was evicted or timed out.
                if (self.tcp.read_closed && !self.tcp.readable) || self.conn_gone {
                    return Ok(Step::Close);
                }
            } else {
                progress |= self.deliver_plaintext()?;
                progress |= self.encrypt_replies(scratch)?;
            }
            if self.finished() {
                return Ok(Step::Close);
            }
            if !progress {
                return Ok(Step::Wait);
            }
        }
    }

    /// Both directions are over and the last record went out.
    fn finished(&self) -> bool {
        self.conn_done && !self.tls.wants_write() && (self.client_done || self.conn_gone)
    }

    /// Writes queued records to the client; once the connection is done
    /// and they are all out, shuts the client's side down for writing.
    fn flush_records(&mut self) -> io::Result<bool> {
        let mut progress = false;
        while self.tls.wants_write() && self.tcp.writable {
            match self.tls.write_tls(&mut Wire(&mut self.tcp)) {
                Ok(_) => progress = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.conn_done && !self.tls.wants_write() {
            self.tcp.shutdown_write();
        }
        Ok(progress)
    }

    /// Reads records while rustls has room for their plaintext, and
    /// processes them (the handshake's messages among them).
    fn receive_records(&mut self) -> io::Result<bool> {
        let mut progress = false;
        while self.tcp.readable && self.tls.wants_read() {
            match self.tls.read_tls(&mut Wire(&mut self.tcp)) {
                Ok(0) => {
                    self.tcp.readable = false;
                    self.tcp.read_closed = true;
                }
                Ok(_) => progress = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            self.tls
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        Ok(progress)
    }

    /// Hands decrypted bytes to the connection; the client's end of the
    /// stream becomes the pair's half-close.
    fn deliver_plaintext(&mut self) -> io::Result<bool> {
        let mut progress = false;
        while !self.client_done {
            let mut reader = self.tls.reader();
            let chunk = match reader.fill_buf() {
                // close_notify: a clean end.
                Ok([]) => None,
                Ok(chunk) => Some(chunk),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.tcp.read_closed {
                        break;
                    }
                    None
                }
                // A TCP end without close_notify: what was sent is all
                // there is; a body cut short is the connection's to see.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
                Err(e) => return Err(e),
            };
            let Some(chunk) = chunk else {
                self.client_done = true;
                self.inner.shutdown_write();
                progress = true;
                break;
            };
            if !self.inner.writable {
                break;
            }
            match self.inner.write(chunk) {
                Ok(Some(n)) => {
                    reader.consume(n);
                    progress = true;
                }
                Ok(None) => break,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    self.conn_gone = true;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }

    /// Reads what the connection sends and seals it into records, only
    /// while the records before it have gone out: rustls holds at most one
    /// scratch's worth of a slow client's replies.
    fn encrypt_replies(&mut self, scratch: &mut [u8]) -> io::Result<bool> {
        let mut progress = false;
        while !self.conn_done && self.inner.readable && !self.tls.wants_write() {
            match self.inner.read(scratch)? {
                Some(0) => {
                    self.conn_done = true;
                    self.tls.send_close_notify();
                }
                // rustls's outgoing buffer is empty here, and its limit
                // (64 KiB) is above a scratch's worth: all of it fits.
                Some(n) => io::Write::write_all(&mut self.tls.writer(), &scratch[..n])?,
                None => break,
            }
            progress = true;
            self.flush_records()?;
        }
        Ok(progress)
    }

    /// The names in the client's verified certificate. One we cannot read
    /// is no credential: the request then needs another.
    fn client_names(&self) -> Option<CertNames> {
        let der = self.tls.peer_certificates()?.first()?;
        cert_names(der)
            .map_err(|e| log::warn!("tls client certificate names unreadable ({e:?}); not a credential"))
            .ok()
    }
}

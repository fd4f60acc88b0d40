//! One TLS client: rustls runs the handshake, then decrypted bytes go to
//! an ordinary connection through a socket pair and its replies come back
//! encrypted, so a request over TLS takes exactly the path (access, relay,
//! consoles) a plain one does.

use std::io::{self, BufRead};
use std::time::Instant;

use rustls::ServerConnection;

use crate::net::socket::Side;
use crate::sys::socket::unsent_bytes;
use crate::tls::cert_names::{cert_names, CertNames};

/// Record bytes one drive reads at most. Decrypting is quick per byte, but
/// a client sending records that carry next to nothing (TLS 1.3 allows
/// all-padding records) never fills the pair, whose back-pressure bounds a
/// bulk upload's turn, and would be decrypted for as long as it keeps the
/// socket full.
const RECORDS_PER_TURN: usize = 256 * 1024;
/// Record bytes a client may send per plaintext byte, beyond a slack: a
/// stream of one-byte records (keystrokes) takes 23.
const RECORDS_PER_PLAINTEXT: u64 = 64;
const RECORD_SLACK: u64 = 64 * 1024;

/// What the front needs next.
#[derive(Debug)]
pub enum Step {
    /// Nothing until the next event or deadline.
    Wait,
    /// The turn's record budget is spent with more waiting: drive again in
    /// the next loop iteration.
    Again,
    /// Handshake messages arrived: processing them signs or verifies,
    /// which is too slow for the loop. `resume` takes the state back.
    Process(Box<ServerConnection>),
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
    /// Away while handshake messages are processed off the loop.
    tls: Option<Box<ServerConnection>>,
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
    /// Record bytes read in this drive, and since the handshake; plaintext
    /// bytes taken from rustls since the handshake.
    turn_read: usize,
    records_read: u64,
    plaintext_taken: u64,
    /// Records went out since the last `client_took_bytes`.
    sent: bool,
    /// The client socket's unacknowledged bytes at the last look.
    unsent_mark: Option<usize>,
}

/// `Side` as the reader and writer rustls moves records with.
struct Wire<'a>(&'a mut Side);

impl io::Read for Wire<'_> {
    /// A short read emptied the socket: readiness is dropped rather than
    /// asking again only to hear "would block".
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read_all_there_is(buf)?
            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }
}

impl io::Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }
    /// rustls hands over every record it holds at once: one `writev`.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0
            .write_vectored(bufs)?
            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
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
            tls: Some(Box::new(tls)),
            established: false,
            client_done: false,
            conn_done: false,
            conn_gone: false,
            deadline: Some(handshake_deadline),
            turn_read: 0,
            records_read: 0,
            plaintext_taken: 0,
            sent: false,
            unsent_mark: None,
        }
    }

    /// Whether the client took bytes since the last call: records went
    /// out, or the kernel holds fewer unacknowledged ones. A client slowly
    /// taking a departed connection's last bytes keeps its linger going,
    /// though the kernel may wake us for room only once a third of its
    /// buffer has drained.
    pub fn client_took_bytes(&mut self) -> bool {
        let unsent = unsent_bytes(self.tcp.fd()).unwrap_or(0);
        let drained = self.unsent_mark.is_some_and(|mark| unsent < mark);
        self.unsent_mark = Some(unsent);
        std::mem::take(&mut self.sent) || drained
    }

    pub fn is_handshaking(&self) -> bool {
        !self.established
    }

    /// Moves every byte readiness allows, in both directions. `scratch`
    /// carries the connection's bytes on their way into records.
    pub fn drive(&mut self, scratch: &mut [u8]) -> Step {
        let Some(mut tls) = self.tls.take() else {
            // Its handshake is being processed; the answer drives it on.
            return Step::Wait;
        };
        self.turn_read = 0;
        match self.pump(&mut tls, scratch) {
            Ok(None) => Step::Process(tls),
            Ok(Some(step)) => {
                self.tls = Some(tls);
                step
            }
            Err(e) => {
                log::debug!("tls: {e}");
                // An alert rustls queued (bad certificate, say) tells the
                // client why; a socket that takes nothing now gets nothing.
                let _ = self.flush_records(&mut tls);
                Step::Close
            }
        }
    }

    /// Takes back the state `Step::Process` handed out, processed; `drive`
    /// then sends the handshake's replies.
    pub fn resume(&mut self, mut tls: Box<ServerConnection>, processed: Result<(), rustls::Error>) -> Step {
        if let Err(e) = processed {
            log::debug!("tls handshake: {e}");
            let _ = self.flush_records(&mut tls);
            return Step::Close;
        }
        self.tls = Some(tls);
        Step::Wait
    }

    /// The next step, or `None` when handshake messages need processing.
    fn pump(&mut self, tls: &mut ServerConnection, scratch: &mut [u8]) -> io::Result<Option<Step>> {
        loop {
            let mut progress = self.flush_records(tls)?;
            if !self.established && !tls.is_handshaking() {
                self.established = true;
                self.deadline = None;
                // Records that came behind the Finished, decrypted now that
                // doing so is quick; they wait until the connection knows
                // the client's names.
                tls.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                return Ok(Some(Step::Established(client_names(tls))));
            }
            let received = self.receive_records(tls)?;
            if !self.established {
                if received {
                    return Ok(None);
                }
                // The client gave up, or its connection was evicted or timed out.
                let gone = (self.tcp.read_closed && !self.tcp.readable) || self.conn_gone;
                return Ok(Some(if gone { Step::Close } else { Step::Wait }));
            }
            progress |= received;
            progress |= self.deliver_plaintext(tls)?;
            progress |= self.encrypt_replies(tls, scratch)?;
            if self.finished(tls) {
                return Ok(Some(Step::Close));
            }
            if !progress {
                let more = self.turn_read >= RECORDS_PER_TURN && self.tcp.readable;
                return Ok(Some(if more { Step::Again } else { Step::Wait }));
            }
        }
    }

    /// Both directions are over and the last record went out.
    fn finished(&self, tls: &ServerConnection) -> bool {
        self.conn_done && !tls.wants_write() && (self.client_done || self.conn_gone)
    }

    /// Writes queued records to the client; once the connection is done
    /// and they are all out, shuts the client's side down for writing.
    fn flush_records(&mut self, tls: &mut ServerConnection) -> io::Result<bool> {
        let mut progress = false;
        while tls.wants_write() && self.tcp.writable {
            match tls.write_tls(&mut Wire(&mut self.tcp)) {
                Ok(_) => {
                    progress = true;
                    self.sent = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.conn_done && !tls.wants_write() {
            self.tcp.shutdown_write();
        }
        Ok(progress)
    }

    /// Reads records while rustls has room for their plaintext. Once the
    /// handshake is over they are processed here (decrypting is quick);
    /// before, the caller has them processed off the loop.
    fn receive_records(&mut self, tls: &mut ServerConnection) -> io::Result<bool> {
        let mut received = false;
        while self.tcp.readable && tls.wants_read() && self.turn_read < RECORDS_PER_TURN {
            match tls.read_tls(&mut Wire(&mut self.tcp)) {
                Ok(0) => {
                    self.tcp.readable = false;
                    self.tcp.read_closed = true;
                }
                Ok(n) => {
                    received = true;
                    self.turn_read += n;
                    if !self.established {
                        // Unprocessed bytes pile up in rustls, which refuses
                        // more than a record's worth: a client that sends
                        // data right behind its Finished would overflow it
                        // before the worker processed the handshake. One
                        // read goes to the worker at a time.
                        break;
                    }
                    self.records_read += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            if self.established {
                let state = tls
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let plaintext = self.plaintext_taken + state.plaintext_bytes_to_read() as u64;
                if self.records_read > RECORD_SLACK + RECORDS_PER_PLAINTEXT * plaintext {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "records that carry next to no data",
                    ));
                }
            }
        }
        Ok(received)
    }

    /// Hands decrypted bytes to the connection; the client's end of the
    /// stream becomes the pair's half-close.
    fn deliver_plaintext(&mut self, tls: &mut ServerConnection) -> io::Result<bool> {
        let mut progress = false;
        while !self.client_done {
            let mut reader = tls.reader();
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
            // Nothing reaches a connection that closed its end: what the
            // client still sends is dropped, and the connection's last
            // bytes still go out.
            let taken = if self.conn_gone {
                chunk.len()
            } else if !self.inner.writable {
                break;
            } else {
                match self.inner.write(chunk) {
                    Ok(Some(n)) => n,
                    Ok(None) => break,
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                        self.conn_gone = true;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            reader.consume(taken);
            self.plaintext_taken += taken as u64;
            progress = true;
        }
        Ok(progress)
    }

    /// Reads what the connection sends and seals it into records, only
    /// while the records before it have gone out: rustls holds at most one
    /// scratch's worth of a slow client's replies.
    fn encrypt_replies(&mut self, tls: &mut ServerConnection, scratch: &mut [u8]) -> io::Result<bool> {
        let mut progress = false;
        while !self.conn_done && self.inner.readable && !tls.wants_write() {
            match self.inner.read_all_there_is(scratch)? {
                Some(0) => {
                    self.conn_done = true;
                    tls.send_close_notify();
                }
                // rustls's outgoing buffer is empty here, and its limit
                // (64 KiB) is above a scratch's worth: all of it fits.
                Some(n) => io::Write::write_all(&mut tls.writer(), &scratch[..n])?,
                None => break,
            }
            progress = true;
            self.flush_records(tls)?;
        }
        Ok(progress)
    }
}

/// The names in the client's verified certificate. One we cannot read is
/// no credential: the request then needs another.
fn client_names(tls: &ServerConnection) -> Option<CertNames> {
    let der = tls.peer_certificates()?.first()?;
    cert_names(der)
        .map_err(|e| log::warn!("tls client certificate names unreadable ({e:?}); not a credential"))
        .ok()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use rustls::ClientConnection;

    use super::*;
    use crate::net::socket::Stream;
    use crate::tls::test_pki::{client, server_config};

    /// A front between a client socket and a connection socket, both plain
    /// unix sockets here, driven by hand: readiness is always claimed, as
    /// the loop does after an event, and `WouldBlock` takes it back.
    struct Rig {
        front: Front,
        client: UnixStream,
        conn: UnixStream,
        scratch: Vec<u8>,
        established: Vec<Option<CertNames>>,
        closed: bool,
    }

    impl Rig {
        fn new() -> Rig {
            let (client, tcp) = mio::net::UnixStream::pair().unwrap();
            let (inner, conn) = mio::net::UnixStream::pair().unwrap();
            let tls = ServerConnection::new(server_config()).unwrap();
            let front = Front::new(
                Side::new(Stream::Unix(tcp)),
                Side::new(Stream::Unix(inner)),
                tls,
                Instant::now() + Duration::from_secs(10),
            );
            let plain = |s: mio::net::UnixStream| {
                let s = UnixStream::from(std::os::fd::OwnedFd::from(s));
                s.set_nonblocking(true).unwrap();
                s
            };
            Rig {
                front,
                client: plain(client),
                conn: plain(conn),
                scratch: vec![0; 32 * 1024],
                established: Vec::new(),
                closed: false,
            }
        }

        /// Drives the front until it waits, processing handshakes in place
        /// of the worker.
        fn drive(&mut self) {
            for side in [&mut self.front.tcp, &mut self.front.inner] {
                side.readable = true;
                side.writable = true;
            }
            loop {
                match self.front.drive(&mut self.scratch) {
                    Step::Wait => return,
                    Step::Again => {}
                    Step::Close => {
                        self.closed = true;
                        return;
                    }
                    Step::Established(names) => self.established.push(names),
                    Step::Process(mut tls) => {
                        let processed = tls.process_new_packets().map(drop);
                        if let Step::Close = self.front.resume(tls, processed) {
                            self.closed = true;
                            return;
                        }
                    }
                }
            }
        }

        /// Moves records both ways between a client and the front until
        /// neither has anything left to say.
        fn talk(&mut self, tls: &mut ClientConnection) {
            for _ in 0..100 {
                let mut moved = false;
                while tls.wants_write() {
                    match tls.write_tls(&mut self.client) {
                        Ok(n) => moved |= n > 0,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                self.drive();
                if !tls.wants_read() {
                    // Its plaintext must be read first.
                    return;
                }
                match tls.read_tls(&mut self.client) {
                    Ok(0) => {}
                    Ok(_) => {
                        moved = true;
                        tls.process_new_packets().unwrap();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
                if !moved {
                    return;
                }
            }
            panic!("the conversation never settled");
        }
    }

    fn read_available(s: &mut impl Read) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut buf = [0; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (out, false),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn plaintext_flows_both_ways_and_each_half_close_is_carried() {
        let mut rig = Rig::new();
        let mut tls = client(true);
        rig.talk(&mut tls);
        assert!(!tls.is_handshaking());
        let names = CertNames {
            common_names: vec!["selftest-client".into()],
            alt_names: vec!["client.selftest".into()],
        };
        assert_eq!(rig.established, vec![Some(names)]);
        assert!(!rig.front.is_handshaking());

        // Larger than a record and than the scratch, to cross both.
        let request: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut got = Vec::new();
        for piece in request.chunks(20_000) {
            tls.writer().write_all(piece).unwrap();
            rig.talk(&mut tls);
            let (more, eof) = read_available(&mut rig.conn);
            assert!(!eof && !more.is_empty(), "stalled at {}", got.len());
            got.extend(more);
        }
        assert_eq!(got, request);

        // The client's close_notify is the connection's EOF, while the
        // connection can still answer.
        tls.send_close_notify();
        rig.talk(&mut tls);
        assert_eq!(read_available(&mut rig.conn), (Vec::new(), true));
        assert!(!rig.closed);
        let reply: Vec<u8> = (0..70_000u32).map(|i| (i * 13) as u8).collect();
        rig.conn.write_all(&reply).unwrap();
        // Closing the connection's end: the rest, then close_notify.
        drop(std::mem::replace(&mut rig.conn, UnixStream::pair().unwrap().0));
        rig.front.conn_gone = true;
        let mut answer = Vec::new();
        loop {
            rig.talk(&mut tls);
            match tls.reader().read_to_end(&mut answer) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(answer, reply);
        assert!(rig.closed, "the front stays open after both ends finished");
    }

    #[test]
    fn data_right_behind_the_finished_waits_for_the_handshake_without_overflowing() {
        let mut rig = Rig::new();
        let mut tls = client(true);
        // The ClientHello, and the server's whole flight back.
        tls.write_tls(&mut rig.client).unwrap();
        rig.drive();
        let mut flight = Vec::new();
        while let (more, false) = read_available(&mut rig.client) {
            if more.is_empty() {
                break;
            }
            flight.extend(more);
        }
        tls.read_tls(&mut &flight[..]).unwrap();
        tls.process_new_packets().unwrap();
        assert!(!tls.is_handshaking());
        // The Finished and 48 KiB behind it reach the socket before the
        // front has processed anything: far more than rustls buffers
        // unprocessed.
        let request: Vec<u8> = (0..48 * 1024u32).map(|i| (i * 31) as u8).collect();
        tls.writer().write_all(&request).unwrap();
        while tls.wants_write() {
            tls.write_tls(&mut rig.client).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < request.len() && !rig.closed {
            rig.drive();
            let (more, eof) = read_available(&mut rig.conn);
            assert!(!eof, "the connection's side ended");
            got.extend(more);
        }
        assert!(!rig.closed, "the front failed");
        assert_eq!(got, request);
    }

    #[test]
    fn a_client_without_a_certificate_is_established_without_names() {
        let mut rig = Rig::new();
        rig.talk(&mut client(false));
        assert_eq!(rig.established, vec![None]);
    }

    #[test]
    fn garbage_instead_of_a_client_hello_is_answered_with_an_alert_and_closed() {
        let mut rig = Rig::new();
        rig.client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        rig.drive();
        assert!(rig.closed);
        assert!(rig.established.is_empty());
        let (sent, _) = read_available(&mut rig.client);
        // A TLS alert record (content type 21), never a byte for the connection.
        assert_eq!(sent.first(), Some(&21), "{sent:?}");
        assert_eq!(read_available(&mut rig.conn).0, b"");
    }

    #[test]
    fn a_client_that_leaves_mid_handshake_closes_its_front() {
        let mut rig = Rig::new();
        let mut tls = client(false);
        let mut hello = Vec::new();
        tls.write_tls(&mut hello).unwrap();
        rig.client.write_all(&hello[..hello.len() / 2]).unwrap();
        rig.drive();
        assert!(!rig.closed);
        rig.client.shutdown(std::net::Shutdown::Write).unwrap();
        rig.drive();
        assert!(rig.closed);
    }
}

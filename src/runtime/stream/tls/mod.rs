//! A TLS session wrapped around a connection's byte I/O (RFC 3261 §26.2, RFC 5246 / 8446):
//! what is read from the socket is opened here and only plaintext reaches the read buffer
//! (so the framer, SIP or WebSocket, never sees a record), and what the worker writes is
//! sealed here on its way to the socket.
//!
//! Two phases:
//! - **Handshake:** rustls' unbuffered API ([`handshake`]) reads records from the session's
//!   own input buffer and writes its flights into the session's output buffer; this may
//!   allocate (certificates, tickets, the key schedule).
//! - **Established:** rustls hands the traffic keys over ([`rustls::kernel`]) and keeps only
//!   the key schedule (key updates, and tickets the server sends a client); records are
//!   opened in place in the input buffer and sealed straight into the output buffer by
//!   [`record`], so a message costs no allocation. Post-handshake messages are handled here:
//!   KeyUpdate (RFC 8446 §4.6.3), NewSessionTicket (§4.6.1), HelloRequest ignored
//!   (RFC 5246 §7.4.1.1), alerts (§6).
//!
//! Memory: one input buffer of the largest record (18 KiB) and one output buffer of the
//! largest sealed record (16.4 KiB) per session. The connection's send queue holds plaintext
//! until the output buffer is empty, so a stalled peer is held to the same bound as on TCP.

mod handshake;
mod record;

use std::io::{self, Read, Write};
use std::ops::Range;

use mio::net::TcpStream;
use rustls::client::ClientConnectionData;
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::server::UnbufferedServerConnection;
use rustls::{ProtocolVersion, client::UnbufferedClientConnection};
use rustls_pki_types::CertificateDer;

use self::handshake::Step;
use self::record::{ContentType, Direction, MAX_OVERHEAD, MAX_PLAINTEXT, MAX_RECORD};
use self::record::{RecordError, Version};
use crate::record::StreamEvent;

/// A session being set up: rustls' unbuffered connection, server or client side.
pub(crate) enum Handshake {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// rustls' part of an established session: the key schedule.
enum Kernel {
    Server(KernelConnection<ServerConnectionData>),
    Client(KernelConnection<ClientConnectionData>),
}

/// An established session: the key schedule and the two directions' keys.
struct Established {
    kernel: Kernel,
    version: Version,
    tx: Direction,
    rx: Direction,
}

enum State {
    Handshake(Box<Handshake>),
    Established(Box<Established>),
    /// After a fatal error, or a transition that failed.
    Failed,
}

/// Largest buffer a handshake may need (a long certificate chain in one message).
const MAX_HANDSHAKE_INPUT: usize = 64 * 1024 + MAX_RECORD;
/// Room for one sealed record of the largest plaintext plus a few control records.
const OUTPUT: usize = MAX_PLAINTEXT + MAX_OVERHEAD + 256;

/// One connection's TLS session.
pub(crate) struct TlsSession {
    state: State,
    /// Records read from the socket: `input[lo..hi]` waits to be opened.
    input: Vec<u8>,
    lo: usize,
    hi: usize,
    /// Opened plaintext in `input` not yet handed to the reader.
    plain: Range<usize>,
    /// Plaintext rustls opened during the handshake (data right behind the client's
    /// Finished), handed out before anything else.
    early: Vec<u8>,
    early_at: usize,
    /// Sealed records for the socket: `output[out_lo..]`.
    output: Vec<u8>,
    out_lo: usize,
    /// The peer's close_notify was read: the end of the stream.
    peer_closed: bool,
    /// The peer's certificate chain, kept from the handshake (mutual TLS's allowlist).
    peer_certificates: Option<Vec<CertificateDer<'static>>>,
    /// The handshake completed and was counted.
    counted: bool,
    /// Why the session failed, once it did (the close is counted with it).
    pub(crate) failure: Option<StreamEvent>,
}

impl TlsSession {
    /// A session in its handshake; a client's first flight is ready in the output at once.
    pub(crate) fn new(handshake: Handshake) -> TlsSession {
        let mut session = TlsSession {
            state: State::Handshake(Box::new(handshake)),
            input: vec![0; MAX_RECORD],
            lo: 0,
            hi: 0,
            plain: 0..0,
            early: Vec::new(),
            early_at: 0,
            output: Vec::with_capacity(OUTPUT),
            out_lo: 0,
            peer_closed: false,
            peer_certificates: None,
            counted: false,
            failure: None,
        };
        // A client speaks first (its ClientHello); a server's first call only waits.
        if let Err(e) = session.advance_handshake() {
            session.fail_handshake(&e);
        }
        session
    }

    /// Once, when the handshake has just completed: the event to count.
    pub(crate) fn handshake_news(&mut self) -> Option<StreamEvent> {
        if self.counted || !matches!(self.state, State::Established(_)) {
            return None;
        }
        self.counted = true;
        Some(StreamEvent::TlsHandshake)
    }

    pub(crate) fn handshaking(&self) -> bool {
        matches!(self.state, State::Handshake(_))
    }

    /// The peer's certificate chain, once the handshake has completed.
    pub(crate) fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.peer_certificates.as_deref()
    }

    /// Sealed records wait for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.out_lo < self.output.len()
    }

    /// Writes the session's pending records; `Ok(true)` once none is left.
    pub(crate) fn flush(&mut self, socket: &mut impl Write) -> io::Result<bool> {
        while self.wants_write() {
            match socket.write(&self.output[self.out_lo..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_lo += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.output.clear();
        self.out_lo = 0;
        Ok(true)
    }

    /// Starts a clean close (a `close_notify` alert, RFC 8446 §6.1), written if the socket
    /// takes it now. A session still in its handshake just closes.
    pub(crate) fn close_notify(&mut self, socket: &mut impl Write) {
        if self.seal_control(ContentType::Alert, &[1, 0]).is_ok() {
            let _ = self.flush(socket);
        }
    }

    /// What a handshake error counts as; the alert rustls wants to send goes out with it.
    fn fail_handshake(&mut self, error: &rustls::Error) -> io::Error {
        use rustls::Error as E;
        let event = match error {
            E::AlertReceived(_) => StreamEvent::TlsFailedAlert,
            E::InvalidCertificate(_) | E::NoCertificatesPresented => {
                StreamEvent::TlsFailedCertificate
            }
            _ => StreamEvent::TlsFailedProtocol,
        };
        if let State::Handshake(hs) = &mut self.state {
            handshake::queue_alert(hs, &mut self.input[self.lo..self.hi], &mut self.output);
        }
        self.state = State::Failed;
        self.failure = Some(event);
        io::Error::new(io::ErrorKind::InvalidData, error.to_string())
    }

    /// An established session's fatal error: the alert sealed for the peer (§6.2), then the
    /// session is done.
    fn fail_record(&mut self, error: RecordError) -> io::Error {
        let _ = self.seal_control(ContentType::Alert, &[2, error.alert()]);
        self.state = State::Failed;
        self.failure.get_or_insert(StreamEvent::TlsError);
        io::Error::new(io::ErrorKind::InvalidData, format!("tls record: {error:?}"))
    }

    fn fail_alert(&mut self, description: u8) -> io::Error {
        self.state = State::Failed;
        self.failure = Some(StreamEvent::TlsAlertReceived);
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("tls alert {description}"),
        )
    }

    /// Runs the handshake over what input there is; at its end, takes over the records.
    /// `Ok(true)` when it has progressed as far as the input allows.
    fn advance_handshake(&mut self) -> Result<Step, rustls::Error> {
        let State::Handshake(hs) = &mut self.state else {
            return Ok(Step::Done);
        };
        let step = handshake::advance(
            hs,
            &mut self.input,
            (&mut self.lo, self.hi),
            &mut self.output,
            &mut self.early,
        )?;
        if step == Step::Done {
            self.establish()?;
        }
        Ok(step)
    }

    /// The handshake is complete: rustls hands over the traffic keys and keeps the key
    /// schedule.
    fn establish(&mut self) -> Result<(), rustls::Error> {
        let State::Handshake(hs) = std::mem::replace(&mut self.state, State::Failed) else {
            return Ok(());
        };
        let certificates = |c: Option<&[CertificateDer<'_>]>| {
            c.map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
        };
        let (secrets, kernel) = match *hs {
            Handshake::Server(c) => {
                self.peer_certificates = certificates(c.peer_certificates());
                let (s, k) = c.dangerous_into_kernel_connection()?;
                (s, Kernel::Server(k))
            }
            Handshake::Client(c) => {
                self.peer_certificates = certificates(c.peer_certificates());
                let (s, k) = c.dangerous_into_kernel_connection()?;
                (s, Kernel::Client(k))
            }
        };
        let version = match kernel.version() {
            ProtocolVersion::TLSv1_3 => Version::Tls13,
            _ => Version::Tls12,
        };
        let unsupported = |_| rustls::Error::General("cipher suite without AEAD keys".into());
        let tx = Direction::new(version, secrets.tx).map_err(unsupported)?;
        let rx = Direction::new(version, secrets.rx).map_err(unsupported)?;
        self.state = State::Established(Box::new(Established {
            kernel,
            version,
            tx,
            rx,
        }));
        Ok(())
    }

    /// Seals a control record (an alert, a KeyUpdate) behind what waits in the output.
    fn seal_control(&mut self, typ: ContentType, payload: &[u8]) -> Result<(), RecordError> {
        let State::Established(est) = &mut self.state else {
            return Err(RecordError::Malformed);
        };
        seal_into(&mut est.tx, typ, payload, &mut self.output)
    }

    /// Opens the next whole record in the input, if there is one, and acts on it: its
    /// plaintext is left in `plain`, post-handshake messages and alerts are handled.
    /// `Ok(false)` when no whole record is there.
    fn open_next(&mut self) -> io::Result<bool> {
        let State::Established(est) = &mut self.state else {
            return Ok(false);
        };
        let waiting = &mut self.input[self.lo..self.hi];
        let len = match record::record_len(waiting, est.version) {
            Ok(Some(len)) if len <= waiting.len() => len,
            Ok(_) => return Ok(false),
            Err(e) => return Err(self.fail_record(e)),
        };
        let (typ, range) = match est.rx.open(&mut waiting[..len]) {
            Ok(opened) => opened,
            Err(e) => return Err(self.fail_record(e)),
        };
        let at = self.lo;
        self.lo += len;
        let plain = at + range.start..at + range.end;
        match typ {
            ContentType::ApplicationData => self.plain = plain,
            ContentType::Alert => self.alert(plain)?,
            ContentType::Handshake => self.post_handshake(plain)?,
            ContentType::ChangeCipherSpec => return Err(self.fail_record(RecordError::Malformed)),
        }
        Ok(true)
    }

    /// An alert (RFC 8446 §6): close_notify ends the stream; user_canceled and TLS 1.2
    /// warnings are ignored; anything else ends the session.
    fn alert(&mut self, plain: Range<usize>) -> io::Result<()> {
        let Some(&[level, description]) = self.input.get(plain) else {
            return Err(self.fail_record(RecordError::Malformed));
        };
        let tls12 = matches!(&self.state, State::Established(e) if e.version == Version::Tls12);
        match (level, description) {
            (_, 0) => self.peer_closed = true,
            (_, 90) => {}
            (1, _) if tls12 => {}
            _ => return Err(self.fail_alert(description)),
        }
        Ok(())
    }

    /// Handshake messages after the handshake, each whole in its record (a message split
    /// over records is refused, as nothing here needs that).
    fn post_handshake(&mut self, plain: Range<usize>) -> io::Result<()> {
        let mut at = plain.start;
        while at < plain.end {
            let Some(&[typ, a, b, c]) = self.input.get(at..at + 4) else {
                return Err(self.fail_record(RecordError::Malformed));
            };
            let len = u32::from_be_bytes([0, a, b, c]) as usize;
            let body = at + 4..at + 4 + len;
            if body.end > plain.end {
                return Err(self.fail_record(RecordError::Malformed));
            }
            at = body.end;
            self.handshake_message(typ, body)?;
        }
        Ok(())
    }

    fn handshake_message(&mut self, typ: u8, body: Range<usize>) -> io::Result<()> {
        let State::Established(est) = &mut self.state else {
            return Ok(());
        };
        match (typ, est.version, &mut est.kernel) {
            // RFC 5246 §7.4.1.1: a client may ignore HelloRequest (no renegotiation here).
            (0, Version::Tls12, Kernel::Client(_)) => Ok(()),
            // RFC 8446 §4.6.1: keep the ticket for resuming toward this server.
            (4, Version::Tls13, Kernel::Client(k)) => {
                let ticket = &self.input[body];
                k.handle_new_session_ticket(ticket)
                    .map_err(|_| self.fail_record(RecordError::Malformed))
            }
            // RFC 8446 §4.6.3: new receiving keys; answer a request with our own update.
            (24, Version::Tls13, _) => {
                let request = match self.input.get(body) {
                    Some(&[0]) => false,
                    Some(&[1]) => true,
                    _ => return Err(self.fail_record(RecordError::Malformed)),
                };
                self.key_update_received(request)
            }
            _ => Err(self.fail_record(RecordError::Malformed)),
        }
    }

    fn key_update_received(&mut self, request: bool) -> io::Result<()> {
        let State::Established(est) = &mut self.state else {
            return Ok(());
        };
        let rx = est.kernel.update_rx_secret();
        let next = rx.ok().and_then(|s| Direction::new(est.version, s).ok());
        let Some(rx) = next else {
            return Err(self.fail_record(RecordError::Unsupported));
        };
        est.rx = rx;
        if request {
            self.update_tx().map_err(|e| self.fail_record(e))?;
        }
        Ok(())
    }

    /// Sends a KeyUpdate (update_not_requested) under the old keys, then uses new ones
    /// (RFC 8446 §4.6.3).
    fn update_tx(&mut self) -> Result<(), RecordError> {
        let State::Established(est) = &mut self.state else {
            return Err(RecordError::Malformed);
        };
        if est.version != Version::Tls13 {
            return Err(RecordError::Exhausted); // TLS 1.2 cannot change keys: close
        }
        seal_into(
            &mut est.tx,
            ContentType::Handshake,
            &[24, 0, 0, 1, 0],
            &mut self.output,
        )?;
        let next = est
            .kernel
            .update_tx_secret()
            .map_err(|_| RecordError::Exhausted)?;
        est.tx = Direction::new(est.version, next)?;
        Ok(())
    }

    /// Seals the front of `plaintext` (one record at most) into the empty output; how much
    /// was taken.
    fn seal_data(&mut self, plaintext: &[u8]) -> Result<usize, RecordError> {
        if matches!(&self.state, State::Established(e) if e.tx.worn_out()) {
            self.update_tx()?;
        }
        let State::Established(est) = &mut self.state else {
            return Err(RecordError::Malformed);
        };
        let n = plaintext.len().min(MAX_PLAINTEXT);
        seal_into(
            &mut est.tx,
            ContentType::ApplicationData,
            &plaintext[..n],
            &mut self.output,
        )?;
        Ok(n)
    }

    /// Makes room in the input and reads the socket once; `Ok(0)` at the end of the stream.
    fn fill(&mut self, socket: &mut impl Read) -> io::Result<usize> {
        if self.lo > 0 {
            self.input.copy_within(self.lo..self.hi, 0);
            self.hi -= self.lo;
            self.lo = 0;
        }
        if self.hi == self.input.len() {
            // Only a handshake message can outgrow one record; records never do.
            if !self.handshaking() || self.input.len() >= MAX_HANDSHAKE_INPUT {
                self.failure.get_or_insert(StreamEvent::TlsFailedProtocol);
                return Err(io::ErrorKind::InvalidData.into());
            }
            self.input.resize(self.input.len() * 2, 0);
        }
        let n = socket.read(&mut self.input[self.hi..])?;
        self.hi += n;
        Ok(n)
    }

    /// Hands out what plaintext is ready; `None` when there is none.
    fn take_plain(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.early_at < self.early.len() {
            let n = buf.len().min(self.early.len() - self.early_at);
            buf[..n].copy_from_slice(&self.early[self.early_at..self.early_at + n]);
            self.early_at += n;
            if self.early_at == self.early.len() {
                self.early = Vec::new();
                self.early_at = 0;
            }
            return Some(n);
        }
        if self.plain.is_empty() {
            return None;
        }
        let n = buf.len().min(self.plain.len());
        buf[..n].copy_from_slice(&self.input[self.plain.start..self.plain.start + n]);
        self.plain.start += n;
        Some(n)
    }
}

/// Seals one record of `typ` at the end of `output`, within its capacity (never growing it
/// once established: a peer that makes us answer faster than it reads is closed).
fn seal_into(
    tx: &mut Direction,
    typ: ContentType,
    payload: &[u8],
    output: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let at = output.len();
    let need = payload.len() + tx.overhead();
    if output.capacity() - at < need {
        return Err(RecordError::Overflow);
    }
    output.resize(at + need, 0);
    match tx.seal(typ, payload, &mut output[at..]) {
        Ok(n) => {
            output.truncate(at + n);
            Ok(())
        }
        Err(e) => {
            output.truncate(at);
            Err(e)
        }
    }
}

impl Kernel {
    fn version(&self) -> ProtocolVersion {
        match self {
            Kernel::Server(k) => k.protocol_version(),
            Kernel::Client(k) => k.protocol_version(),
        }
    }

    fn update_rx_secret(
        &mut self,
    ) -> Result<(u64, rustls::ConnectionTrafficSecrets), rustls::Error> {
        match self {
            Kernel::Server(k) => k.update_rx_secret(),
            Kernel::Client(k) => k.update_rx_secret(),
        }
    }

    fn update_tx_secret(
        &mut self,
    ) -> Result<(u64, rustls::ConnectionTrafficSecrets), rustls::Error> {
        match self {
            Kernel::Server(k) => k.update_tx_secret(),
            Kernel::Client(k) => k.update_tx_secret(),
        }
    }
}

/// The plaintext side of a session over its socket, read like the socket itself.
pub(crate) struct TlsIo<'a, S = TcpStream> {
    pub(crate) tls: &'a mut TlsSession,
    pub(crate) socket: &'a mut S,
}

impl<S: Read + Write> Read for TlsIo<'_, S> {
    /// Plaintext when the session has some; else the next record opened, or one socket read
    /// (handshake flights answered as they complete), and again. `Ok(0)` is the end of the
    /// stream (a `close_notify`, or the peer's FIN); `WouldBlock` when the socket has no more.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let tls = &mut *self.tls;
        loop {
            if let Some(n) = tls.take_plain(buf) {
                return Ok(n);
            }
            if tls.peer_closed {
                return Ok(0);
            }
            let need_input = match &tls.state {
                State::Handshake(_) => {
                    let step = tls.advance_handshake();
                    let step = step.map_err(|e| {
                        let e = tls.fail_handshake(&e);
                        let _ = tls.flush(self.socket); // the alert, if it fits
                        e
                    })?;
                    tls.flush(self.socket)?;
                    if step == Step::PeerClosed {
                        tls.peer_closed = true;
                    }
                    step == Step::NeedInput
                }
                State::Established(_) => !tls.open_next().inspect_err(|_| {
                    let _ = tls.flush(self.socket);
                })?,
                State::Failed => return Err(io::ErrorKind::InvalidData.into()),
            };
            if need_input && tls.fill(self.socket)? == 0 {
                return Ok(0); // the peer's FIN
            }
            if !tls.handshaking() {
                tls.flush(self.socket)?; // KeyUpdate answers
            }
        }
    }
}

impl<S: Read + Write> Write for TlsIo<'_, S> {
    /// Seals plaintext once the earlier records are on the socket (so what the session
    /// holds stays bounded), then writes what it can. Until the handshake completes nothing
    /// is taken (`WouldBlock`): the send queue keeps it, and is written when it completes.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.tls.flush(self.socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match &self.tls.state {
            State::Handshake(_) => return Err(io::ErrorKind::WouldBlock.into()),
            State::Failed => return Err(io::ErrorKind::InvalidData.into()),
            State::Established(_) => {}
        }
        let n = self
            .tls
            .seal_data(buf)
            .map_err(|e| self.tls.fail_record(e))?;
        self.tls.flush(self.socket)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tls.flush(self.socket).map(|_| ())
    }
}

#[cfg(test)]
impl TlsSession {
    fn wear_out_tx_after(&mut self, records: u64) {
        if let State::Established(e) = &mut self.state {
            e.tx.wear_out_after(records);
        }
    }
}

#[cfg(test)]
mod tests;

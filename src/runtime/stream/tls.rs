//! A TLS session wrapped around a connection's byte I/O (RFC 3261 §26.2, RFC 5246 / 8446):
//! what is read from the socket goes through rustls and only plaintext reaches the read
//! buffer (so the framer, SIP or WebSocket, never sees a record), and what the worker writes
//! goes through rustls to the socket. The session's ciphertext waiting for the socket stays
//! in rustls (bounded by its buffer limit); the connection's own send queue holds plaintext
//! until rustls has room, so a stalled peer is held to the same bound as on TCP.
//!
//! rustls 0.23 keeps each received and each sent record in a `Vec` of its own (its
//! `ChunkVecBuffer`): that is the one allocation per message left on an established TLS
//! connection, measured by `tests/secure_no_alloc.rs`; ferrovia's own code adds none.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use crate::record::StreamEvent;

/// One connection's TLS session.
pub(crate) struct TlsSession {
    pub(crate) conn: rustls::Connection,
    /// The handshake completed and was counted.
    counted: bool,
    /// Why the session failed, once it did (the close is counted with it).
    pub(crate) failure: Option<StreamEvent>,
}

impl TlsSession {
    pub(crate) fn new(conn: rustls::Connection) -> TlsSession {
        TlsSession {
            conn,
            counted: false,
            failure: None,
        }
    }

    /// Once, when the handshake has just completed: the event to count.
    pub(crate) fn handshake_news(&mut self) -> Option<StreamEvent> {
        if self.counted || self.conn.is_handshaking() {
            return None;
        }
        self.counted = true;
        Some(StreamEvent::TlsHandshake)
    }

    pub(crate) fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Writes the session's pending ciphertext; `Ok(true)` once none is left.
    pub(crate) fn flush(&mut self, socket: &mut TcpStream) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Starts a clean close (a `close_notify` alert, RFC 8446 §6.1), written if the socket
    /// takes it now.
    pub(crate) fn close_notify(&mut self, socket: &mut TcpStream) {
        self.conn.send_close_notify();
        let _ = self.flush(socket);
    }

    /// What a failed `process_new_packets` counts as.
    fn fail(&mut self, error: &rustls::Error) -> io::Error {
        use rustls::Error as E;
        let event = match error {
            E::AlertReceived(_) if self.conn.is_handshaking() => StreamEvent::TlsFailedAlert,
            E::AlertReceived(_) => StreamEvent::TlsAlertReceived,
            E::InvalidCertificate(_) | E::NoCertificatesPresented => {
                StreamEvent::TlsFailedCertificate
            }
            _ if self.conn.is_handshaking() => StreamEvent::TlsFailedProtocol,
            _ => StreamEvent::TlsError,
        };
        self.failure = Some(event);
        io::Error::new(io::ErrorKind::InvalidData, error.to_string())
    }
}

/// The plaintext side of a session over its socket, read like the socket itself.
pub(crate) struct TlsIo<'a> {
    pub(crate) tls: &'a mut TlsSession,
    pub(crate) socket: &'a mut TcpStream,
}

impl Read for TlsIo<'_> {
    /// Plaintext when the session has some; else one socket read, its records processed
    /// (and any handshake answer written), and again. `Ok(0)` is the end of the stream
    /// (a `close_notify`, or the peer's FIN); `WouldBlock` when the socket has no more.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let n = self.tls.conn.read_tls(self.socket)?;
            if let Err(error) = self.tls.conn.process_new_packets() {
                let e = self.tls.fail(&error);
                let _ = self.tls.flush(self.socket); // the alert rustls queued, if it fits
                return Err(e);
            }
            self.tls.flush(self.socket)?;
            if n == 0 {
                // The peer's FIN: rustls now reports Ok(0) or UnexpectedEof above.
                continue;
            }
        }
    }
}

impl Write for TlsIo<'_> {
    /// Hands plaintext to the session once its earlier ciphertext is on the socket (so what
    /// rustls holds stays bounded), then writes what it can.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.tls.flush(self.socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.tls.conn.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.tls.flush(self.socket) {
            Ok(_) => Ok(n),
            Err(e) => Err(e),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tls.flush(self.socket).map(|_| ())
    }
}

//! A SIP server over TCP or TLS for the health-probe tests: a thread that accepts
//! connections on a loopback address, answers every OPTIONS with 200 and keeps every other
//! request it receives (for the test to read), until it is stopped — which closes the
//! listener and every connection, as a box that dies does. Non-blocking sockets polled every
//! 2 ms; everything bounded; the thread is joined when the responder is dropped.

#![allow(dead_code, unreachable_pub)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection};

use super::runtime_support::sip::response;

/// What the responder saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Every OPTIONS answered, as received.
    pub options: Vec<String>,
    /// Every other request, as received.
    pub requests: Vec<String>,
    /// The SNI names the TLS clients sent (`None`: no SNI, e.g. an IP address verified).
    pub sni: Vec<Option<String>>,
}

/// A running responder; stopped (listener and connections closed) when dropped.
pub struct Responder {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Listens on `addr` (port 0: any) over TCP, or TLS with `tls`.
    pub fn start(addr: SocketAddr, tls: Option<Arc<ServerConfig>>) -> Responder {
        let listener = TcpListener::bind(addr).expect("bind a responder");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local address");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || serve(&listener, tls, &seen, &stop))
        };
        Responder {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().expect("not poisoned").clone()
    }

    /// Closes the listener and every connection.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One accepted connection: the socket, its TLS session, what was read and not framed.
struct Conn {
    socket: TcpStream,
    tls: Option<ServerConnection>,
    input: Vec<u8>,
    sni_noted: bool,
}

fn serve(
    listener: &TcpListener,
    tls: Option<Arc<ServerConfig>>,
    seen: &Mutex<Seen>,
    stop: &AtomicBool,
) {
    let mut conns: Vec<Conn> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        while let Ok((socket, _)) = listener.accept() {
            let _ = socket.set_nonblocking(true);
            let tls = tls
                .as_ref()
                .map(|c| ServerConnection::new(Arc::clone(c)).expect("a TLS session"));
            conns.push(Conn {
                socket,
                tls,
                input: Vec::new(),
                sni_noted: false,
            });
        }
        conns.retain_mut(|c| c.pump(seen).is_ok());
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Conn {
    /// Reads what there is, answers what is whole; an error closes the connection.
    fn pump(&mut self, seen: &Mutex<Seen>) -> io::Result<()> {
        self.read()?;
        if let Some(tls) = &self.tls
            && !tls.is_handshaking()
            && !self.sni_noted
        {
            self.sni_noted = true;
            let sni = tls.server_name().map(str::to_owned);
            seen.lock().expect("not poisoned").sni.push(sni);
        }
        while let Some(len) = framed_len(&self.input) {
            let message: Vec<u8> = self.input.drain(..len).collect();
            let text = String::from_utf8_lossy(&message).into_owned();
            let mut seen = seen.lock().expect("not poisoned");
            if text.starts_with("OPTIONS ") {
                self.send(response(&text, 200, "OK").as_bytes())?;
                seen.options.push(text);
            } else if !text.starts_with("SIP/2.0 ") {
                seen.requests.push(text);
            }
        }
        self.flush()
    }

    fn read(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        loop {
            let n = match &mut self.tls {
                Some(tls) => match tls.read_tls(&mut self.socket) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(_) => {
                        tls.process_new_packets().map_err(io::Error::other)?;
                        let mut plain = Vec::new();
                        match tls.reader().read_to_end(&mut plain) {
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => return Err(e),
                        }
                        self.input.extend_from_slice(&plain);
                        continue;
                    }
                    Err(e) => Err(e),
                },
                None => self.socket.read(&mut chunk),
            };
            match n {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.flush(),
                Err(e) => return Err(e),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.tls {
            Some(tls) => tls.writer().write_all(bytes),
            None => self.socket.write_all(bytes),
        }
    }

    /// Writes what the TLS session holds (its handshake flights, sealed answers).
    fn flush(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                match tls.write_tls(&mut self.socket) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// The length of the first whole message in `buf` (headers and Content-Length body).
fn framed_len(buf: &[u8]) -> Option<usize> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]);
    let length: usize = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    (buf.len() >= end + length).then_some(end + length)
}

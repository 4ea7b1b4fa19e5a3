//! TLS and WebSocket for the tests: certificates made on the spot with rcgen (a CA, a server
//! certificate for `localhost`, `sip.test`, 127.0.0.1 and ::1, a client certificate), a proxy
//! listening on every transport of one loopback family, a rustls client and next hop, and a
//! tungstenite WebSocket client (plain or over rustls). Every read is bounded.

#![allow(dead_code, unreachable_pub)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrovia::settings::{ListenAddr, Metrics, Settings, TlsSettings};
use ferrovia::sip::Transport;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};

use super::runtime_support::RECV_LIMIT;
use super::runtime_support::tcp::Family;

/// A test PKI written to a directory of its own.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A second server certificate, for `other.test` only (SNI).
    pub other_cert: PathBuf,
    pub other_key: PathBuf,
    pub server_der: CertificateDer<'static>,
    pub other_der: CertificateDer<'static>,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: Vec<u8>,
}

fn leaf(names: &[&str], issuer: &Issuer<'_, KeyPair>) -> (CertificateDer<'static>, KeyPair) {
    let key = KeyPair::generate().expect("a key");
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("names");
    // A subject of its own: OpenSSL takes a leaf named like its issuer for self-signed.
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, issuer).expect("sign");
    (cert.der().clone(), key)
}

impl Pki {
    pub fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("ferrovia-pki-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a PKI directory");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "ferrovia test CA");
        let ca_cert = params.self_signed(&ca_key).expect("a CA");
        let issuer = Issuer::new(params, ca_key);
        let (server, server_key) = leaf(&["localhost", "sip.test", "127.0.0.1", "::1"], &issuer);
        let (client, client_key) = leaf(&["client.test"], &issuer);
        let (other, other_key) = leaf(&["other.test"], &issuer);
        let pem = |der: &CertificateDer<'_>| {
            let b64 = base64_lines(der.as_ref());
            format!("-----BEGIN CERTIFICATE-----\n{b64}-----END CERTIFICATE-----\n")
        };
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        let ca = write("ca.pem", ca_cert.pem());
        let cert = write("server.pem", pem(&server) + &ca_cert.pem());
        let key = write("server.key", server_key.serialize_pem());
        let other_cert = write("other.pem", pem(&other));
        let other_key = write("other.key", other_key.serialize_pem());
        Pki {
            dir,
            ca,
            cert,
            key,
            other_cert,
            other_key,
            server_der: server.clone(),
            other_der: other,
            ca_der: ca_cert.der().clone(),
            issuer,
            server_chain: vec![server],
            server_key: server_key.serialize_der(),
            client_chain: vec![client],
            client_key: client_key.serialize_der(),
        }
    }

    /// Writes a new server certificate and key (same names) over the files; returns it.
    pub fn reissue(&self) -> CertificateDer<'static> {
        let (server, key) = leaf(&["localhost", "sip.test", "127.0.0.1", "::1"], &self.issuer);
        let b64 = base64_lines(server.as_ref());
        let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}-----END CERTIFICATE-----\n");
        std::fs::write(&self.cert, pem).expect("write the certificate");
        std::fs::write(&self.key, key.serialize_pem()).expect("write the key");
        server
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("the CA");
        roots
    }

    /// A client configuration trusting the test CA, with the client certificate if asked.
    pub fn client_config(&self, with_certificate: bool) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(self.roots());
        let config = if with_certificate {
            let key = PrivateKeyDer::try_from(self.client_key.clone()).expect("client key");
            builder
                .with_client_auth_cert(self.client_chain.clone(), key)
                .expect("client certificate")
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(config)
    }

    /// A next hop's server configuration (the server certificate, no client certificate).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::try_from(self.server_key.clone()).expect("server key");
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(self.server_chain.clone(), key)
            .expect("server certificate");
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    text.as_bytes()
        .chunks(64)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect()
}

/// Where each listener of a [`secure_settings`] proxy is.
#[derive(Clone, Copy, Debug)]
pub struct Listeners {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub tls: SocketAddr,
    pub ws: SocketAddr,
    pub wss: SocketAddr,
}

impl Listeners {
    pub fn of(addrs: &[SocketAddr]) -> Listeners {
        Listeners {
            udp: addrs[0],
            tcp: addrs[1],
            tls: addrs[2],
            ws: addrs[3],
            wss: addrs[4],
        }
    }
}

/// A proxy on udp, tcp, tls, ws and wss of one loopback family, Record-Routing, trusting
/// the test CA (not the system's roots).
pub fn secure_settings(family: Family, pki: &Pki, workers: usize) -> Settings {
    let addr = family.any_port();
    let on = |transport| ListenAddr { transport, addr };
    Settings {
        listen: vec![
            on(Transport::Udp),
            on(Transport::Tcp),
            on(Transport::Tls),
            on(Transport::Ws),
            on(Transport::Wss),
        ],
        workers,
        record_route: true,
        metrics: Metrics::Off,
        tls: TlsSettings {
            certificates: vec![(pki.cert.clone(), pki.key.clone())],
            ca: Some(pki.ca.clone()),
            system_roots: false,
            ..TlsSettings::default()
        },
        ..Settings::default()
    }
}

/// One framed SIP conversation over any byte stream (TLS here).
pub struct SipConn<S> {
    pub stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> SipConn<S> {
    pub fn new(stream: S) -> SipConn<S> {
        SipConn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
        self.stream.flush().expect("flush");
    }

    pub fn recv(&mut self) -> String {
        self.try_recv()
            .unwrap_or_else(|e| panic!("no message arrived: {e}"))
    }

    pub fn try_recv(&mut self) -> io::Result<String> {
        loop {
            if let Some(len) = framed_len(&self.buf) {
                let message: Vec<u8> = self.buf.drain(..len).collect();
                return Ok(String::from_utf8_lossy(&message).into_owned());
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

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

pub type TlsClient = StreamOwned<ClientConnection, TcpStream>;
pub type TlsServer = StreamOwned<ServerConnection, TcpStream>;

/// A TLS connection to `addr` verified as `name`, with its handshake done.
pub fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> io::Result<TlsClient> {
    let tcp = TcpStream::connect_timeout(&addr, RECV_LIMIT)?;
    tcp.set_read_timeout(Some(RECV_LIMIT))?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(name.to_string()).expect("a server name");
    let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// A next hop that speaks TLS with the server certificate.
pub struct TlsNextHop {
    pub listener: TcpListener,
    config: Arc<ServerConfig>,
}

impl TlsNextHop {
    pub fn bind(family: Family, pki: &Pki) -> TlsNextHop {
        TlsNextHop {
            listener: TcpListener::bind(family.any_port()).expect("bind a next hop"),
            config: pki.server_config(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("local address")
    }

    /// The next connection the proxy opens to us (bounded wait), TLS accepted.
    pub fn accept(&self) -> SipConn<TlsServer> {
        self.listener.set_nonblocking(true).expect("nonblocking");
        let deadline = std::time::Instant::now() + RECV_LIMIT;
        let tcp = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the proxy never connected"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        tcp.set_nonblocking(false).expect("blocking");
        tcp.set_read_timeout(Some(RECV_LIMIT)).expect("timeout");
        let conn = ServerConnection::new(Arc::clone(&self.config)).expect("a session");
        SipConn::new(StreamOwned::new(conn, tcp))
    }
}

/// Any byte stream a WebSocket client can run over.
pub trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

pub type WsClient = tungstenite::WebSocket<Box<dyn Io>>;

/// A WebSocket client handshake to `addr` (over TLS when `tls` is given), offering
/// `protocol` and `origin` when given.
pub fn ws_connect(
    addr: SocketAddr,
    tls: Option<Arc<ClientConfig>>,
    protocol: Option<&str>,
    origin: Option<&str>,
) -> Result<WsClient, tungstenite::Error> {
    use tungstenite::client::IntoClientRequest;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let mut request = format!("{scheme}://localhost:{}/", addr.port())
        .into_client_request()
        .expect("a request");
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().expect("header"));
    }
    if let Some(o) = origin {
        request
            .headers_mut()
            .insert("Origin", o.parse().expect("header"));
    }
    let tcp = TcpStream::connect_timeout(&addr, RECV_LIMIT)?;
    tcp.set_read_timeout(Some(RECV_LIMIT))?;
    tcp.set_nodelay(true)?;
    let stream: Box<dyn Io> = match tls {
        Some(config) => {
            let name = ServerName::try_from("localhost").expect("name");
            let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
            Box::new(StreamOwned::new(conn, tcp))
        }
        None => Box::new(tcp),
    };
    match tungstenite::client(request, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            Err(tungstenite::Error::Io(io::ErrorKind::WouldBlock.into()))
        }
    }
}

/// The next SIP message on a WebSocket (each WebSocket message is one).
pub fn ws_recv(ws: &mut WsClient) -> String {
    loop {
        match ws.read().expect("a WebSocket message") {
            tungstenite::Message::Text(t) => return t.to_string(),
            tungstenite::Message::Binary(b) => return String::from_utf8_lossy(&b).into_owned(),
            _ => {}
        }
    }
}

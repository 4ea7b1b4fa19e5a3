//! The session against rustls' own buffered connections as the peer, in memory: every cipher
//! suite of both versions, both sides, key updates, tickets, and damaged records. rustls'
//! record layer is the independent implementation our sealing and opening must agree with.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite};

use super::{Handshake, TlsIo, TlsSession};
use crate::record::StreamEvent;

/// Our side's socket: what the peer wrote waits in `inbound`; what we wrote goes to
/// `outbound`. Empty reads would block, as on a non-blocking socket.
#[derive(Default)]
struct Wire {
    inbound: VecDeque<u8>,
    outbound: Vec<u8>,
    fin: bool,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbound.is_empty() {
            return match self.fin {
                true => Ok(0),
                false => Err(io::ErrorKind::WouldBlock.into()),
            };
        }
        self.inbound.read(buf)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbound.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Pki {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Pki {
        chain: vec![made.cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into()),
    }
}

fn provider(suite: SupportedCipherSuite) -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: vec![suite],
        ..ring::default_provider()
    })
}

fn server_config(pki: &Pki, suite: SupportedCipherSuite) -> Arc<ServerConfig> {
    let mut c = ServerConfig::builder_with_provider(provider(suite))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .unwrap();
    c.enable_secret_extraction = true;
    Arc::new(c)
}

fn client_config(pki: &Pki, suite: SupportedCipherSuite) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.chain[0].clone()).unwrap();
    let mut c = ClientConfig::builder_with_provider(provider(suite))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.enable_secret_extraction = true;
    Arc::new(c)
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// Our session and a rustls peer over one wire.
struct Pair {
    ours: Box<TlsSession>,
    wire: Wire,
    peer: rustls::Connection,
    /// Plaintext each side has read.
    ours_read: Vec<u8>,
    peer_read: Vec<u8>,
    ours_error: Option<io::Error>,
}

impl Pair {
    fn new(ours: Handshake, peer: rustls::Connection) -> Pair {
        Pair {
            ours: Box::new(TlsSession::new(ours)),
            wire: Wire::default(),
            peer,
            ours_read: Vec::new(),
            peer_read: Vec::new(),
            ours_error: None,
        }
    }

    fn io(&mut self) -> TlsIo<'_, Wire> {
        TlsIo {
            tls: &mut self.ours,
            socket: &mut self.wire,
        }
    }

    /// Moves bytes both ways until neither side has more to say (bounded).
    fn pump(&mut self) {
        for _ in 0..64 {
            let mut buf = [0u8; 4096];
            loop {
                match self.io().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => self.ours_read.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        self.ours_error = Some(e);
                        break;
                    }
                }
            }
            let _ = self.io().flush();
            let sent = std::mem::take(&mut self.wire.outbound);
            let mut from_us = &sent[..];
            while !from_us.is_empty() {
                self.peer.read_tls(&mut from_us).unwrap();
                if self.peer.process_new_packets().is_err() {
                    break;
                }
                let _ = self.peer.reader().read_to_end(&mut self.peer_read);
            }
            let mut to_us = Vec::new();
            while self.peer.wants_write() {
                self.peer.write_tls(&mut to_us).unwrap();
            }
            if sent.is_empty() && to_us.is_empty() {
                return;
            }
            self.wire.inbound.extend(to_us);
        }
    }

    /// Writes `bytes` through our session (as the send queue does) and pumps.
    fn ours_send(&mut self, bytes: &[u8]) {
        let mut at = 0;
        while at < bytes.len() {
            match self.io().write(&bytes[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.pump(),
                Err(e) => panic!("write: {e}"),
            }
        }
        self.pump();
    }

    fn peer_send(&mut self, bytes: &[u8]) {
        self.peer.writer().write_all(bytes).unwrap();
        self.pump();
    }
}

fn ours_server(pki: &Pki, suite: SupportedCipherSuite) -> Pair {
    let ours = rustls::server::UnbufferedServerConnection::new(server_config(pki, suite));
    let peer = rustls::ClientConnection::new(client_config(pki, suite), localhost()).unwrap();
    Pair::new(Handshake::Server(ours.unwrap()), peer.into())
}

fn ours_client(pki: &Pki, client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> Pair {
    let ours = rustls::client::UnbufferedClientConnection::new(client, localhost());
    let peer = rustls::ServerConnection::new(server).unwrap();
    let _ = pki;
    Pair::new(Handshake::Client(ours.unwrap()), peer.into())
}

/// A message of `len` bytes that shows misplaced or lost bytes.
fn message(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

const SUITES: [SupportedCipherSuite; 6] = [
    ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
];

#[test]
fn every_suite_both_ways_as_server_and_as_client() {
    let pki = pki();
    for suite in SUITES {
        for we_serve in [true, false] {
            let mut pair = match we_serve {
                true => ours_server(&pki, suite),
                false => ours_client(&pki, client_config(&pki, suite), server_config(&pki, suite)),
            };
            pair.pump();
            assert!(!pair.ours.handshaking(), "{suite:?} handshake");
            assert_eq!(pair.ours.handshake_news(), Some(StreamEvent::TlsHandshake));
            assert_eq!(pair.ours.handshake_news(), None, "counted once");
            // One record, then one larger than a record's plaintext (split by both sides).
            for (i, len) in [300usize, 40_000].into_iter().enumerate() {
                let (a, b) = (message(len, i as u8), message(len, 0x80 | i as u8));
                pair.peer_send(&a);
                pair.ours_send(&b);
                assert_eq!(
                    pair.ours_read, a,
                    "{suite:?} serve={we_serve} ours read {len}"
                );
                assert_eq!(
                    pair.peer_read, b,
                    "{suite:?} serve={we_serve} peer read {len}"
                );
                pair.ours_read.clear();
                pair.peer_read.clear();
            }
            assert!(pair.ours_error.is_none(), "{:?}", pair.ours_error);
            // close_notify each way (RFC 8446 §6.1): the peer sees a clean end, and so do we.
            pair.ours.close_notify(&mut pair.wire);
            pair.peer.send_close_notify();
            pair.pump();
            let mut rest = Vec::new();
            assert_eq!(pair.peer.reader().read_to_end(&mut rest).unwrap(), 0);
            assert_eq!(
                pair.io().read(&mut [0u8; 16]).unwrap(),
                0,
                "close_notify is EOF"
            );
        }
    }
}

#[test]
fn key_updates_from_the_peer_are_followed_and_answered() {
    let pki = pki();
    for we_serve in [true, false] {
        let suite = ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
        let mut pair = match we_serve {
            true => ours_server(&pki, suite),
            false => ours_client(&pki, client_config(&pki, suite), server_config(&pki, suite)),
        };
        pair.pump();
        for round in 0..3u8 {
            // rustls asks for our update too (update_requested, RFC 8446 §4.6.3).
            pair.peer.refresh_traffic_keys().unwrap();
            let (a, b) = (message(500, round), message(700, round ^ 0x55));
            pair.peer_send(&a);
            pair.ours_send(&b);
            assert_eq!(pair.ours_read, a, "round {round}");
            assert_eq!(pair.peer_read, b, "round {round}");
            pair.ours_read.clear();
            pair.peer_read.clear();
        }
        assert!(pair.ours_error.is_none(), "{:?}", pair.ours_error);
    }
}

#[test]
fn a_client_keeps_the_servers_tickets_and_resumes_with_them() {
    let pki = pki();
    let suite = ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let (client, server) = (client_config(&pki, suite), server_config(&pki, suite));
    let mut first = ours_client(&pki, Arc::clone(&client), Arc::clone(&server));
    first.pump();
    // The tickets come after the handshake (RFC 8446 §4.6.1), in records we open.
    first.peer_send(b"hello");
    assert_eq!(first.ours_read, b"hello");
    let mut second = ours_client(&pki, client, server);
    second.pump();
    assert!(!second.ours.handshaking());
    assert_eq!(
        second.peer.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
}

#[test]
fn a_damaged_record_ends_the_session_with_bad_record_mac() {
    let pki = pki();
    for suite in SUITES {
        let mut pair = ours_server(&pki, suite);
        pair.pump();
        pair.peer.writer().write_all(b"INVITE").unwrap();
        let mut record = Vec::new();
        while pair.peer.wants_write() {
            pair.peer.write_tls(&mut record).unwrap();
        }
        let last = record.len() - 1;
        record[last] ^= 1; // the tag
        pair.wire.inbound.extend(record);
        let err = pair.io().read(&mut [0u8; 64]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{suite:?}");
        assert_eq!(pair.ours.failure, Some(StreamEvent::TlsError));
        // Our alert reaches the peer (RFC 8446 §6.2).
        let sent = std::mem::take(&mut pair.wire.outbound);
        pair.peer.read_tls(&mut &sent[..]).unwrap();
        let alert = pair.peer.process_new_packets().unwrap_err();
        assert!(
            alert.to_string().contains("BadRecordMac"),
            "{suite:?}: {alert}"
        );
    }
}

#[test]
fn garbage_and_oversize_records_are_errors_not_panics() {
    let pki = pki();
    let suite = ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let cases: [&[u8]; 5] = [
        &[23, 3, 3, 0x48, 0x01],    // longer than 2^14 + 256 (RFC 8446 §5.2)
        &[99, 3, 3, 0, 1, 0],       // an unknown type
        &[23, 9, 3, 0, 1, 0],       // a version that is not 3.x
        &[23, 3, 3, 0, 3, 1, 2, 3], // shorter than a tag
        &[20, 3, 3, 0, 1, 1],       // change_cipher_spec after the handshake
    ];
    for case in cases {
        let mut pair = ours_server(&pki, suite);
        pair.pump();
        pair.wire.inbound.extend(case);
        let err = pair.io().read(&mut [0u8; 64]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{case:?}");
        assert_eq!(pair.ours.failure, Some(StreamEvent::TlsError), "{case:?}");
    }
}

#[test]
fn a_failed_handshake_is_counted_by_its_reason_and_alerts_the_peer() {
    let pki = pki();
    let other = self::pki();
    let suite = ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    // We are the client; the server's certificate is not one we trust.
    let mut pair = ours_client(
        &pki,
        client_config(&pki, suite),
        server_config(&other, suite),
    );
    pair.pump();
    assert!(pair.ours_error.is_some());
    assert_eq!(pair.ours.failure, Some(StreamEvent::TlsFailedCertificate));
    let err = pair.peer.process_new_packets().unwrap_err();
    assert!(err.to_string().contains("alert"), "{err}");
}

#[test]
fn worn_out_keys_are_replaced_on_tls13_and_end_a_tls12_session() {
    let pki = pki();
    // TLS 1.3 (RFC 8446 §5.5): a KeyUpdate before the limit, and the peer follows it.
    let mut pair = ours_server(&pki, ring::cipher_suite::TLS13_AES_128_GCM_SHA256);
    pair.pump();
    pair.ours.wear_out_tx_after(1);
    for i in 0..3u8 {
        let m = message(200, i);
        pair.ours_send(&m);
        assert_eq!(pair.peer_read, m, "message {i}");
        pair.peer_read.clear();
        pair.ours.wear_out_tx_after(1);
    }
    // TLS 1.2 has no key update: the session ends instead of sealing past the limit.
    let suite = ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
    let mut pair = ours_server(&pki, suite);
    pair.pump();
    pair.ours.wear_out_tx_after(0);
    let err = pair.io().write(b"INVITE").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(pair.ours.failure, Some(StreamEvent::TlsError));
}

#[test]
fn data_in_the_clients_last_flight_is_read_before_the_records_are_taken_over() {
    // The client's first request leaves with its Finished (RFC 8446 §2: 1-RTT data), so
    // rustls opens it during the handshake; it must reach the reader first, and in order.
    let pki = pki();
    for suite in SUITES {
        let mut pair = ours_server(&pki, suite);
        let (first, second) = (message(1200, 1), message(300, 2));
        pair.peer.writer().write_all(&first).unwrap();
        pair.pump();
        pair.peer_send(&second);
        let mut want = first.clone();
        want.extend_from_slice(&second);
        assert_eq!(pair.ours_read, want, "{suite:?}");
        assert!(!pair.ours.handshaking());
    }
}

//! RFC 5922 §7.2 through the shipping service: a TLS next hop whose address came from DNS
//! (dnsmasq on loopback: SRV `_sips._tcp` and A) is verified against the domain of the
//! Request-URI — not the SRV target's name, not the address; an opened connection is reused
//! only for the same (address, name); an IP-literal URI is still verified as the address. A
//! TLS destination of a group named in DNS is verified the same way — its probes and the
//! requests the group sends it — against the domain it was configured by.
//! Skipped with a message when dnsmasq is missing, unless FERROVIA_REQUIRE_TOOLS is set.

mod dns_support;
mod responder_support;
mod runtime_support;
mod secure_support;

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dns_support::{Dnsmasq, dnsmasq_present, host, srv};
use ferrovia::runtime::StreamEvent;
use runtime_support::tcp::Family;
use runtime_support::{RECV_LIMIT, free_udp_port, start_service, wait_for};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secure_support::{Listeners, Pki, SipConn, TlsNextHop, secure_settings, tls_connect};

/// A next hop's configuration presenting the certificate for `other.test` only (no address
/// in it, so verifying it as 127.0.0.1 fails).
fn other_test_config(pki: &Pki) -> Arc<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(&pki.other_cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.other_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// The next TCP connection to `listener` (bounded wait), as a TLS server with `config`.
fn accept(
    listener: &TcpListener,
    config: &Arc<ServerConfig>,
) -> StreamOwned<ServerConnection, std::net::TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + RECV_LIMIT;
    let tcp = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the proxy never connected");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(RECV_LIMIT)).unwrap();
    StreamOwned::new(ServerConnection::new(Arc::clone(config)).unwrap(), tcp)
}

fn message(from: SocketAddr, ruri: &str, call: &str) -> String {
    format!(
        "MESSAGE {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/TLS {from};branch=z9hG4bK-{call};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sips:bob@client.test>;tag=b\r\n\
         To: <{ruri}>\r\n\
         Call-ID: {call}@names.test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn a_dns_found_tls_next_hop_is_verified_as_the_uri_domain() {
    if !dnsmasq_present("a_dns_found_tls_next_hop_is_verified_as_the_uri_domain") {
        return;
    }
    let pki = Pki::new("dns-names");
    let hop = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hop.local_addr().unwrap().port();
    // Both domains lead to the same SRV target, box.host.test (named by no certificate).
    let dns = Dnsmasq::start(
        free_udp_port(),
        &[
            srv("_sips._tcp.other.test", "box.host.test", port, 10, 10),
            srv("_sips._tcp.wrong.test", "box.host.test", port, 10, 10),
            host("box.host.test", "127.0.0.1", 60),
        ],
        60,
    );
    let mut settings = secure_settings(Family::V4, &pki, 1);
    settings.dns.enabled = true;
    settings.dns.config.servers = vec![dns.addr];
    settings.dns.config.attempts = 1;
    let server = start_service(&settings);
    let at = Listeners::of(server.local_addrs());
    let tls = tls_connect(at.tls, pki.client_config(false), "localhost").unwrap();
    let mut client = SipConn::new(tls);
    let me = client.stream.sock.local_addr().unwrap();
    let config = other_test_config(&pki);

    // sips:…@other.test → SRV → box.host.test → 127.0.0.1: the certificate names other.test.
    client.send(message(me, "sips:carol@other.test", "named").as_bytes());
    let mut good = accept(&hop, &config);
    let mut buf = [0u8; 2048];
    let n = good.read(&mut buf).expect("the MESSAGE over verified TLS");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(
        text.starts_with("MESSAGE sips:carol@other.test SIP/2.0\r\n"),
        "{text}"
    );
    wait_for(&server, StreamEvent::TlsHandshake, 2); // the client's and the next hop's

    // Same address, another domain: a new connection (not the one verified as other.test),
    // and the certificate, which does not name wrong.test, refused.
    client.send(message(me, "sip:carol@wrong.test;transport=tls", "wrong").as_bytes());
    let mut bad = accept(&hop, &config);
    assert!(
        bad.read(&mut buf).is_err(),
        "the proxy gave up on wrong.test"
    );
    wait_for(&server, StreamEvent::TlsFailedCertificate, 1);

    // An IP literal is verified as the address: refused by this next hop's certificate…
    let literal = format!("sips:carol@127.0.0.1:{port}");
    client.send(message(me, &literal, "literal").as_bytes());
    let mut bad = accept(&hop, &config);
    assert!(
        bad.read(&mut buf).is_err(),
        "the proxy gave up on 127.0.0.1"
    );
    wait_for(&server, StreamEvent::TlsFailedCertificate, 2);

    // …and accepted from one whose certificate names 127.0.0.1.
    let by_ip = TlsNextHop::bind(Family::V4, &pki);
    let literal = format!("sips:carol@127.0.0.1:{}", by_ip.addr().port());
    client.send(message(me, &literal, "by-ip").as_bytes());
    let text = by_ip.accept().recv();
    assert!(text.contains("Call-ID: by-ip@names.test"), "{text}");
    drop(good);
}

#[test]
fn a_tls_group_destination_named_in_dns_is_verified_as_its_domain() {
    if !dnsmasq_present("a_tls_group_destination_named_in_dns_is_verified_as_its_domain") {
        return;
    }
    use ferrovia::groups::{DestinationConfig, GroupConfig, ProbeConfig};
    let pki = Pki::new("group-names");
    // A box presenting other.test's certificate only, behind both domains' SRV records.
    let hop =
        responder_support::Responder::start(Family::V4.any_port(), Some(other_test_config(&pki)));
    let dns = Dnsmasq::start(
        free_udp_port(),
        &[
            srv(
                "_sips._tcp.other.test",
                "box.host.test",
                hop.addr.port(),
                10,
                10,
            ),
            srv(
                "_sips._tcp.wrong.test",
                "box.host.test",
                hop.addr.port(),
                10,
                10,
            ),
            host("box.host.test", "127.0.0.1", 60),
        ],
        60,
    );
    let group = |name: &str, uri: &str| {
        let mut g = GroupConfig::new(
            name,
            vec![DestinationConfig::parse(uri, 1, 0, |_| None).unwrap()],
        );
        g.probe = ProbeConfig {
            interval: Duration::from_millis(300),
            timeout: Duration::from_millis(250),
            down_after: 2,
            up_after: 1,
            ..ProbeConfig::default()
        };
        g
    };
    let mut settings = secure_settings(Family::V4, &pki, 1);
    settings.dns.enabled = true;
    settings.dns.config.servers = vec![dns.addr];
    settings.groups = vec![
        group("core", "sips:other.test"),
        group("bad", "sips:wrong.test"),
    ];
    settings.route_to_group = Some("core".into());
    let server = start_service(&settings);
    let state = |g: usize| {
        let snapshot = server.snapshot();
        snapshot.groups().expect("groups").groups[g].destinations[0].clone()
    };

    // Probes: other.test's verified (and named in SNI), wrong.test's refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(0).last_probe_rtt_us == 0 || state(1).state != "down" {
        assert!(Instant::now() < deadline, "{:?} / {:?}", state(0), state(1));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(state(0).state, "up");
    assert_eq!(state(0).address, hop.addr.to_string());
    assert!(
        hop.seen().sni.contains(&Some("other.test".into())),
        "{:?}",
        hop.seen().sni
    );

    // A request the group sends over TLS: verified as other.test on a worker's connection.
    let at = Listeners::of(server.local_addrs());
    let mut client =
        SipConn::new(tls_connect(at.tls, pki.client_config(false), "localhost").unwrap());
    let me = client.stream.sock.local_addr().unwrap();
    client.send(message(me, "sip:carol@elsewhere.test", "grouped").as_bytes());
    let deadline = Instant::now() + RECV_LIMIT;
    while hop.seen().requests.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the request never reached the box"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(hop.seen().requests[0].contains("Call-ID: grouped@names.test"));
}

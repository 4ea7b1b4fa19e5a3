//! SIP over TLS through the proxy, over real loopback sockets on IPv4 and IPv6 (RFC 3261
//! §26.2, RFC 5922): a rustls client in, a TLS next hop out and the response back; UDP in,
//! TLS out with a doubled Record-Route; the next hop verified by the name it was routed by;
//! mutual TLS accepted and refused; and Python's own `ssl` module as an independent client.

mod runtime_support;
mod secure_support;

use std::net::UdpSocket;
use std::process::Command;

use ferrovia::runtime::StreamEvent;
use runtime_support::RECV_LIMIT;
use runtime_support::sip::{headers, invite_over, response, status, via_count};
use runtime_support::tcp::{Family, on_each_family};
use runtime_support::{start_service, wait_for};
use secure_support::{Listeners, Pki, SipConn, TlsNextHop, secure_settings, tls_connect};

fn host(addr: std::net::SocketAddr) -> String {
    match addr {
        std::net::SocketAddr::V4(a) => a.to_string(),
        std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

fn record_routes(message: &str) -> Vec<String> {
    headers(message, "Record-Route")
        .map(str::to_owned)
        .collect()
}

#[test]
fn tls_in_tls_out_and_the_response_comes_back() {
    let pki = Pki::new("tls-both");
    on_each_family("tls_both_ways", |family| {
        let server = start_service(&secure_settings(family, &pki, 2));
        let at = Listeners::of(server.local_addrs());
        let next = TlsNextHop::bind(family, &pki);
        let tls =
            tls_connect(at.tls, pki.client_config(false), "localhost").expect("TLS to the proxy");
        let mut client = SipConn::new(tls);
        let me = client.stream.sock.local_addr().unwrap();
        client.send(invite_over("TLS", me, next.addr(), "tls", "tls2tls").as_bytes());

        let mut hop = next.accept();
        let request = hop.recv();
        assert_eq!(via_count(&request), 2, "{request}");
        let top = headers(&request, "Via").next().unwrap();
        assert!(
            top.starts_with(&format!("SIP/2.0/TLS {}", host(at.tls))),
            "{request}"
        );
        assert_eq!(
            record_routes(&request),
            [format!("<sip:{};transport=tls;lr>", host(at.tls))],
            "{request}"
        );
        hop.send(response(&request, 200, "OK").as_bytes());
        let answer = client.recv();
        assert_eq!(status(&answer), Some(200), "{answer}");
        assert_eq!(via_count(&answer), 1, "{answer}");
        wait_for(&server, StreamEvent::TlsHandshake, 2); // the client's and the next hop's
        wait_for(&server, StreamEvent::TlsAccepted, 1);
        wait_for(&server, StreamEvent::TlsOpened, 1);
    });
}

#[test]
fn udp_in_tls_out_doubles_the_record_route_and_back() {
    let pki = Pki::new("udp-tls");
    on_each_family("udp_to_tls", |family| {
        let server = start_service(&secure_settings(family, &pki, 2));
        let at = Listeners::of(server.local_addrs());
        let next = TlsNextHop::bind(family, &pki);
        let udp = UdpSocket::bind(family.any_port()).unwrap();
        udp.set_read_timeout(Some(RECV_LIMIT)).unwrap();
        let me = udp.local_addr().unwrap();
        let invite = invite_over("UDP", me, next.addr(), "tls", "u2t");
        udp.send_to(invite.as_bytes(), at.udp).unwrap();

        let mut hop = next.accept();
        let request = hop.recv();
        let top = headers(&request, "Via").next().unwrap();
        assert!(
            top.starts_with(&format!("SIP/2.0/TLS {}", host(at.tls))),
            "{request}"
        );
        // RFC 5658: one Record-Route per side when the transport changes.
        assert_eq!(
            record_routes(&request),
            [
                format!("<sip:{};transport=tls;lr>", host(at.tls)),
                format!("<sip:{};lr>", host(at.udp)),
            ],
            "{request}"
        );
        hop.send(response(&request, 180, "Ringing").as_bytes());
        let mut buf = [0u8; 4096];
        let (n, from) = udp.recv_from(&mut buf).expect("the 180 over UDP");
        assert_eq!(from, at.udp);
        assert_eq!(status(&String::from_utf8_lossy(&buf[..n])), Some(180));
    });
}

#[test]
fn the_next_hop_is_verified_by_the_name_it_was_routed_by() {
    // RFC 5922 §7.2: sip.test is in the certificate, wrong.test is not; both resolve to the
    // next hop's address through the static host table.
    let pki = Pki::new("names");
    let family = Family::V4;
    let mut settings = secure_settings(family, &pki, 1);
    settings.hosts = vec![
        ("sip.test".into(), family.ip()),
        ("wrong.test".into(), "127.0.0.2".parse().unwrap()),
    ];
    let server = start_service(&settings);
    let at = Listeners::of(server.local_addrs());
    let next = TlsNextHop::bind(family, &pki);
    let port = next.addr().port();
    let mut client =
        SipConn::new(tls_connect(at.tls, pki.client_config(false), "localhost").unwrap());
    let me = client.stream.sock.local_addr().unwrap();
    let invite = invite_over("TLS", me, next.addr(), "tls", "named").replace(
        &format!("<sip:{};transport=tls;lr>", next.addr()),
        &format!("<sip:sip.test:{port};transport=tls;lr>"),
    );
    client.send(invite.as_bytes());
    let mut hop = next.accept();
    assert!(hop.recv().starts_with("INVITE "));
    wait_for(&server, StreamEvent::TlsHandshake, 2);

    // A next hop on 127.0.0.2 known as wrong.test: its certificate does not name it.
    let wrong = std::net::TcpListener::bind("127.0.0.2:0");
    let Ok(wrong) = wrong else {
        return eprintln!("skipped the wrong-name half: no 127.0.0.2");
    };
    let wport = wrong.local_addr().unwrap().port();
    let config = pki.server_config();
    let serve = std::thread::spawn(move || {
        let (tcp, _) = wrong.accept().unwrap();
        tcp.set_read_timeout(Some(RECV_LIMIT)).unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut buf = [0u8; 100];
        std::io::Read::read(&mut tls, &mut buf).is_err()
    });
    let invite = invite_over("TLS", me, next.addr(), "tls", "wrong").replace(
        &format!("<sip:{};transport=tls;lr>", next.addr()),
        &format!("<sip:wrong.test:{wport};transport=tls;lr>"),
    );
    client.send(invite.as_bytes());
    wait_for(&server, StreamEvent::TlsFailedCertificate, 1);
    assert!(serve.join().unwrap(), "the next hop saw the proxy give up");
}

#[test]
fn mutual_tls_accepts_a_client_certificate_and_refuses_none() {
    let pki = Pki::new("mtls");
    on_each_family("mutual_tls", |family| {
        let mut settings = secure_settings(family, &pki, 1);
        settings.tls.verify_client = true;
        let server = start_service(&settings);
        let at = Listeners::of(server.local_addrs());
        let options = |me| {
            format!(
                "OPTIONS sip:{} SIP/2.0\r\nVia: SIP/2.0/TLS {};branch=z9hG4bK-m\r\nMax-Forwards: 70\r\n\
                 From: <sip:c@client.test>;tag=m\r\nTo: <sip:p@proxy>\r\nCall-ID: mtls@test\r\n\
                 CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                host(at.tls),
                host(me)
            )
        };
        let tls = tls_connect(at.tls, pki.client_config(true), "localhost").expect("mutual TLS");
        let mut client = SipConn::new(tls);
        let me = client.stream.sock.local_addr().unwrap();
        client.send(options(me).as_bytes());
        assert_eq!(status(&client.recv()), Some(200));

        // Without a certificate: TLS 1.3 finishes the client's side, the proxy then refuses.
        let refused = tls_connect(at.tls, pki.client_config(false), "localhost")
            .map(SipConn::new)
            .and_then(|mut c| {
                let me = c.stream.sock.local_addr()?;
                std::io::Write::write_all(&mut c.stream, options(me).as_bytes())?;
                c.try_recv()
            });
        assert!(refused.is_err(), "{refused:?}");
        wait_for(&server, StreamEvent::TlsFailedCertificate, 1);
        // WSS never asks browsers for a certificate.
        let ws =
            secure_support::ws_connect(at.wss, Some(pki.client_config(false)), Some("sip"), None);
        assert!(ws.is_ok(), "{:?}", ws.err());
    });
}

#[test]
fn mutual_tls_with_an_allowlist_of_client_names() {
    let pki = Pki::new("mtls-allow");
    let options = |to, me| {
        format!(
            "OPTIONS sip:{} SIP/2.0\r\nVia: SIP/2.0/TLS {};branch=z9hG4bK-a\r\nMax-Forwards: 70\r\n\
             From: <sip:c@client.test>;tag=a\r\nTo: <sip:p@proxy>\r\nCall-ID: allow@test\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            host(to),
            host(me)
        )
    };
    for (allowed, admitted) in [("client.test", true), ("carrier.example", false)] {
        let mut settings = secure_settings(Family::V4, &pki, 1);
        settings.tls.verify_client = true;
        settings.tls.allowed_clients = vec![allowed.into()];
        let server = start_service(&settings);
        let at = Listeners::of(server.local_addrs());
        let answer = tls_connect(at.tls, pki.client_config(true), "localhost")
            .map(SipConn::new)
            .and_then(|mut c| {
                let me = c.stream.sock.local_addr()?;
                std::io::Write::write_all(&mut c.stream, options(at.tls, me).as_bytes())?;
                c.try_recv()
            });
        assert_eq!(answer.is_ok(), admitted, "{allowed}: {answer:?}");
        if !admitted {
            wait_for(&server, StreamEvent::TlsFailedCertificate, 1);
        }
    }
}

#[test]
fn sni_chooses_the_certificate_and_no_match_gets_the_first() {
    let pki = Pki::new("sni");
    let mut settings = secure_settings(Family::V4, &pki, 1);
    settings
        .tls
        .certificates
        .push((pki.other_cert.clone(), pki.other_key.clone()));
    let server = start_service(&settings);
    let at = Listeners::of(server.local_addrs());
    let presented = |name: &str| {
        let tls = tls_connect(at.tls, pki.client_config(false), name).expect("handshake");
        tls.conn.peer_certificates().expect("a chain")[0].clone()
    };
    assert_eq!(presented("other.test"), pki.other_der);
    assert_eq!(presented("localhost"), pki.server_der);
    assert_eq!(presented("sip.test"), pki.server_der);
    // An IP address sends no SNI (RFC 6066 §3): the first certificate.
    assert_eq!(presented("127.0.0.1"), pki.server_der);
}

#[test]
fn python_ssl_is_an_independent_client() {
    let python = Command::new("python3").arg("--version").output();
    if python.is_err() {
        assert!(
            std::env::var_os("FERROVIA_REQUIRE_TOOLS").is_none(),
            "python3 is required (FERROVIA_REQUIRE_TOOLS)"
        );
        return eprintln!("python_ssl: skipped: no python3");
    }
    let pki = Pki::new("python");
    on_each_family("python_ssl", |family| {
        let server = start_service(&secure_settings(family, &pki, 1));
        let at = Listeners::of(server.local_addrs());
        let script = r#"
import socket, ssl, sys
host, port, ca, via = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
with socket.create_connection((host, port), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname='localhost') as s:
        me = s.getsockname()
        sent_by = ('[%s]:%d' % me[:2]) if fam == socket.AF_INET6 else ('%s:%d' % me[:2])
        msg = ('OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK-py\r\n'
               'Max-Forwards: 70\r\nFrom: <sip:py@test>;tag=py\r\nTo: <sip:%s>\r\n'
               'Call-ID: py@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n') % (via, sent_by, via)
        s.sendall(msg.encode())
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = s.recv(4096)
            if not chunk: break
            data += chunk
        print(s.version(), data.split(b'\r\n')[0].decode())
"#;
        let out = Command::new("python3")
            .args([
                "-c",
                script,
                &at.tls.ip().to_string(),
                &at.tls.port().to_string(),
            ])
            .arg(&pki.ca)
            .arg(host(at.tls))
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("SIP/2.0 200"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with("TLSv1.3"), "{stdout}");
        wait_for(&server, StreamEvent::TlsHandshake, 1);
    });
}

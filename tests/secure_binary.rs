//! The binary with the config names an operator writes: `listen` with udp, tcp, tls, ws and
//! wss (IPv4 and IPv6), `[tls] certificate / key / ca / verify-client`, `[websocket]
//! origins`; a TLS client and a WSS client get through, the handshakes are counted in
//! `/metrics` and in `ferrovia stats`, and `--listen tls:` works on the command line; SIGHUP
//! reloads the certificates for new connections, leaving established ones alone.

mod runtime_support;
mod secure_support;

use runtime_support::process::Ferrovia;
use runtime_support::sip::status;
use runtime_support::tcp::Family;
use secure_support::{Pki, SipConn, tls_connect, ws_connect, ws_recv};
use tungstenite::Message;

fn options(to: std::net::SocketAddr, via: &str) -> String {
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/{via} client.invalid;branch=z9hG4bK-bin\r\n\
         Max-Forwards: 70\r\nFrom: <sip:c@test>;tag=bin\r\nTo: <sip:{to}>\r\n\
         Call-ID: bin@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn the_config_file_names_for_tls_and_websocket() {
    let pki = Pki::new("binary");
    let v6 = Family::V6.available("secure_binary v6");
    let mut listen = vec![
        "udp:127.0.0.1:0",
        "tcp:127.0.0.1:0",
        "tls:127.0.0.1:0",
        "ws:127.0.0.1:0",
        "wss:127.0.0.1:0",
    ];
    if v6 {
        listen.extend(["tls:[::1]:0", "wss:[::1]:0"]);
    }
    let quoted: Vec<String> = listen.iter().map(|l| format!("{l:?}")).collect();
    let config = format!(
        "listen = [{}]\nworkers = 2\nmetrics = \"127.0.0.1:0\"\n\n[tls]\ncertificate = {:?}\n\
         key = {:?}\nca = {:?}\nverify-client = false\n\n[websocket]\n\
         origins = [\"https://phone.example.com\"]\n",
        quoted.join(", "),
        pki.cert,
        pki.key,
        pki.ca
    );
    let file = pki.dir.join("ferrovia.toml");
    std::fs::write(&file, config).unwrap();
    let mut proxy = Ferrovia::start(&["--config", file.to_str().unwrap()], listen.len());
    let tls = proxy.addrs[2];
    let wss = proxy.addrs[4];

    let mut client = SipConn::new(tls_connect(tls, pki.client_config(false), "localhost").unwrap());
    client.send(options(tls, "TLS").as_bytes());
    assert_eq!(status(&client.recv()), Some(200));
    let origin = Some("https://phone.example.com");
    let mut ws = ws_connect(wss, Some(pki.client_config(false)), Some("sip"), origin).unwrap();
    ws.send(Message::text(options(wss, "WSS"))).unwrap();
    assert_eq!(status(&ws_recv(&mut ws)), Some(200));
    if v6 {
        let tls6 = proxy.addrs[5];
        let mut c6 =
            SipConn::new(tls_connect(tls6, pki.client_config(false), "localhost").unwrap());
        c6.send(options(tls6, "TLS").as_bytes());
        assert_eq!(status(&c6.recv()), Some(200));
    }

    let line = proxy.await_line("metrics on http://");
    let metrics = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the metrics address is logged")
        .to_owned();
    // Each worker publishes its counters periodically (the TLS and the WSS connection may be
    // on different workers): poll (bounded) until all of these show.
    let wanted = [
        "event=\"tls_handshake_ok\"",
        "event=\"wss_accepted\"",
        "event=\"ws_handshake_ok\"",
    ];
    let deadline = std::time::Instant::now() + runtime_support::RECV_LIMIT;
    let text = loop {
        let text = runtime_support::http_get(metrics.parse().unwrap(), "/metrics");
        if wanted.iter().all(|w| text.contains(w)) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    for want in wanted {
        assert!(text.contains(want), "/metrics lacks {want}:\n{text}");
    }
    let out = std::process::Command::new(Ferrovia::binary())
        .args(["stats", "--metrics", &metrics])
        .output()
        .expect("run ferrovia stats");
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(stats.contains("tls handshake ok"), "{stats}");
    let (status, _) = proxy.terminate();
    assert!(status.success());
}

#[test]
fn tls_on_the_command_line_needs_a_certificate() {
    let out = std::process::Command::new(Ferrovia::binary())
        .args(["--listen", "tls:127.0.0.1:0", "--metrics", "off"])
        .output()
        .expect("run ferrovia");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[tls]"), "{err}");
}

#[test]
fn sighup_reloads_certificates_for_new_connections_only() {
    let pki = Pki::new("reload");
    let config = format!(
        "listen = [\"tls:127.0.0.1:0\"]\nworkers = 1\nmetrics = \"off\"\n[tls]\n\
         certificate = {:?}\nkey = {:?}\nsystem-roots = false\n",
        pki.cert, pki.key
    );
    let file = pki.dir.join("reload.toml");
    std::fs::write(&file, config).unwrap();
    let mut proxy = Ferrovia::start(&["--config", file.to_str().unwrap()], 1);
    let tls = proxy.addrs[0];
    let presented = |c: &secure_support::TlsClient| c.conn.peer_certificates().unwrap()[0].clone();

    let mut before = SipConn::new(tls_connect(tls, pki.client_config(false), "localhost").unwrap());
    assert_eq!(presented(&before.stream), pki.server_der);
    let reissued = pki.reissue();
    proxy.signal(libc::SIGHUP);
    proxy.await_line("certificates reloaded");
    let after = tls_connect(tls, pki.client_config(false), "localhost").unwrap();
    assert_eq!(presented(&after), reissued);
    // The connection made before the reload goes on with its session.
    before.send(options(tls, "TLS").as_bytes());
    assert_eq!(status(&before.recv()), Some(200));

    // A broken file is refused and the certificates in use stay.
    std::fs::write(&pki.key, "not a key").unwrap();
    proxy.signal(libc::SIGHUP);
    proxy.await_line("certificates not reloaded");
    let still = tls_connect(tls, pki.client_config(false), "localhost").unwrap();
    assert_eq!(presented(&still), reissued);
    let (status, _) = proxy.terminate();
    assert!(status.success());
}

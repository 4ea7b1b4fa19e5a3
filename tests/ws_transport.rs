//! SIP over WebSocket and secure WebSocket (RFC 7118) through the proxy, with tungstenite as
//! an independent client: a browser-like WSS client (`.invalid` Via host and Contact) calls a
//! TCP next hop with a doubled Record-Route and is reached back over its connection; the
//! upgrade without the `sip` subprotocol (400) or from a foreign Origin (403) is refused;
//! fragmented messages, pings, the close handshake and an oversize frame (1009). IPv4 and
//! IPv6.

mod runtime_support;
mod secure_support;

use ferrovia::runtime::StreamEvent;
use ferrovia::settings::ContactSettings;
use runtime_support::sip::{header, headers, response, status, via_count};
use runtime_support::tcp::{Family, NextHop, on_each_family};
use runtime_support::{start_service, wait_for};
use secure_support::{Listeners, Pki, WsClient, secure_settings, ws_connect, ws_recv};
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

fn host(addr: std::net::SocketAddr) -> String {
    match addr {
        std::net::SocketAddr::V4(a) => a.to_string(),
        std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// An OPTIONS for the proxy itself, from a browser (RFC 7118 §5.2: an `.invalid` Via host).
fn options(proxy: std::net::SocketAddr, transport: &str, call: &str) -> String {
    let to = host(proxy);
    format!(
        "OPTIONS sip:{to};transport={} SIP/2.0\r\nVia: SIP/2.0/{transport} df7jal23ls0d.invalid;branch=z9hG4bK-{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:web@example.com>;tag={call}\r\nTo: <sip:{to}>\r\n\
         Call-ID: {call}@browser\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        transport.to_ascii_lowercase()
    )
}

fn wss(at: &Listeners, pki: &Pki) -> WsClient {
    ws_connect(
        at.wss,
        Some(pki.client_config(false)),
        Some("sip"),
        Some("https://phone.example.com"),
    )
    .expect("WSS upgrade")
}

#[test]
fn a_wss_browser_calls_a_tcp_next_hop_and_is_reached_back() {
    let pki = Pki::new("wss-tcp");
    on_each_family("wss_to_tcp", |family| {
        let mut settings = secure_settings(family, &pki, 2);
        settings.rewrite_contact = Some(ContactSettings::default());
        let server = start_service(&settings);
        let at = Listeners::of(server.local_addrs());
        let next = NextHop::bind(family);
        let mut ws = wss(&at, &pki);
        let to = next.addr();
        let invite = format!(
            "INVITE sip:alice@{to} SIP/2.0\r\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK-w1\r\n\
             Max-Forwards: 70\r\nRoute: <sip:{to};transport=tcp;lr>\r\n\
             From: <sip:web@example.com>;tag=w1\r\nTo: <sip:alice@{to}>\r\nCall-ID: w1@browser\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:k3l2@df7jal23ls0d.invalid;transport=ws;ob>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        ws.send(Message::text(invite)).unwrap();

        let mut hop = next.accept();
        let request = hop.recv();
        assert_eq!(via_count(&request), 2, "{request}");
        assert!(
            headers(&request, "Via")
                .next()
                .unwrap()
                .starts_with("SIP/2.0/TCP "),
            "{request}"
        );
        let rr: Vec<_> = headers(&request, "Record-Route").collect();
        assert_eq!(
            rr,
            [
                format!("<sip:{};transport=tcp;lr>", host(at.tcp)),
                format!("<sip:{};transport=wss;lr>", host(at.wss)),
            ],
            "{request}"
        );
        hop.send(response(&request, 200, "OK").as_bytes());
        let answer = ws_recv(&mut ws);
        assert_eq!(status(&answer), Some(200), "{answer}");

        // The callee hangs up: its BYE goes to the (rewritten) Contact and reaches the browser
        // over its WebSocket, although its Contact host is `.invalid`.
        let contact = header(&request, "Contact").expect("a Contact");
        let uri = contact.trim_start_matches('<').split('>').next().unwrap();
        assert!(
            !uri.contains(".invalid"),
            "the Contact was rewritten: {uri}"
        );
        let me = hop.local_addr();
        let bye = format!(
            "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bK-bye\r\nMax-Forwards: 70\r\n\
             Route: {}\r\nRoute: {}\r\nFrom: <sip:alice@{to}>;tag=alice\r\n\
             To: <sip:web@example.com>;tag=w1\r\nCall-ID: w1@browser\r\nCSeq: 2 BYE\r\n\
             Content-Length: 0\r\n\r\n",
            host(me),
            rr[0],
            rr[1]
        );
        hop.send(bye.as_bytes());
        let bye = ws_recv(&mut ws);
        assert!(bye.starts_with("BYE "), "{bye}");
        assert!(
            headers(&bye, "Via")
                .next()
                .unwrap()
                .starts_with("SIP/2.0/WSS "),
            "{bye}"
        );
        wait_for(&server, StreamEvent::WsHandshake, 1);
        wait_for(&server, StreamEvent::WssAccepted, 1);
    });
}

#[test]
fn upgrades_without_sip_or_from_a_foreign_origin_are_refused() {
    let pki = Pki::new("ws-refuse");
    on_each_family("ws_refusals", |family| {
        let mut settings = secure_settings(family, &pki, 1);
        settings.websocket.origins = vec!["https://phone.example.com".into()];
        let server = start_service(&settings);
        let at = Listeners::of(server.local_addrs());
        let http_status = |r: Result<WsClient, tungstenite::Error>| match r {
            Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("the upgrade was accepted"),
        };
        assert_eq!(http_status(ws_connect(at.ws, None, None, None)), 400);
        assert_eq!(
            http_status(ws_connect(at.ws, None, Some("chat"), None)),
            400
        );
        let evil = Some("https://evil.example");
        assert_eq!(http_status(ws_connect(at.ws, None, Some("sip"), evil)), 403);
        let config = Some(pki.client_config(false));
        assert_eq!(http_status(ws_connect(at.wss, config, None, None)), 400);
        wait_for(&server, StreamEvent::WsFailedNoSip, 3);
        wait_for(&server, StreamEvent::WsFailedOrigin, 1);
        let ok = ws_connect(at.ws, None, Some("sip"), Some("https://phone.example.com"));
        assert!(ok.is_ok());
    });
}

#[test]
fn fragments_pings_and_the_close_handshake() {
    let pki = Pki::new("ws-frames");
    on_each_family("ws_frames", |family| {
        let server = start_service(&secure_settings(family, &pki, 1));
        let at = Listeners::of(server.local_addrs());
        for (addr, transport) in [(at.ws, "WS"), (at.wss, "WSS")] {
            let tls = (transport == "WSS").then(|| pki.client_config(false));
            let mut ws = ws_connect(addr, tls, Some("sip"), None).expect("upgrade");
            // One SIP message in three fragments, a ping between them (RFC 6455 §5.4).
            let message = options(addr, transport, "frag");
            let (a, rest) = message.split_at(20);
            let (b, c) = rest.split_at(30);
            let frame =
                |data: &str, op, fin| Message::Frame(Frame::message(data.to_owned(), op, fin));
            ws.send(frame(a, OpCode::Data(Data::Text), false)).unwrap();
            ws.send(Message::Ping("between".into())).unwrap();
            ws.send(frame(b, OpCode::Data(Data::Continue), false))
                .unwrap();
            ws.send(frame(c, OpCode::Data(Data::Continue), true))
                .unwrap();
            let mut got_pong = false;
            let answer = loop {
                match ws.read().expect("a message") {
                    Message::Pong(p) => got_pong = p.as_ref() == b"between",
                    Message::Text(t) => break t.to_string(),
                    other => panic!("{other:?}"),
                }
            };
            assert_eq!(status(&answer), Some(200), "{answer}");
            assert!(answer.contains("df7jal23ls0d.invalid"), "{answer}");
            // A ping on its own.
            ws.send(Message::Ping("hb".into())).unwrap();
            while !got_pong {
                got_pong = matches!(ws.read().unwrap(), Message::Pong(p) if p.as_ref() == b"hb");
            }
            // The close handshake: our close is echoed, then the proxy closes.
            ws.close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .unwrap();
            let echoed = loop {
                match ws.read() {
                    Ok(Message::Close(frame)) => break frame.map(|f| f.code),
                    Ok(_) => {}
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(echoed, Some(CloseCode::Normal));
        }
        wait_for(&server, StreamEvent::WsClose1000, 2);
        wait_for(&server, StreamEvent::WsPing, 4);
    });
}

#[test]
fn an_oversize_frame_closes_with_1009() {
    let pki = Pki::new("ws-1009");
    let family = Family::V4;
    let mut settings = secure_settings(family, &pki, 1);
    settings.tcp.max_message = 4096;
    let server = start_service(&settings);
    let at = Listeners::of(server.local_addrs());
    for (addr, tls) in [(at.ws, None), (at.wss, Some(pki.client_config(false)))] {
        let mut ws = ws_connect(addr, tls, Some("sip"), None).expect("upgrade");
        ws.send(Message::text("x".repeat(5000))).unwrap();
        let code = loop {
            match ws.read() {
                Ok(Message::Close(frame)) => break frame.map(|f| f.code),
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(code, Some(CloseCode::Size));
    }
    wait_for(&server, StreamEvent::WsClose1009, 2);
}

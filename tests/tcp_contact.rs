//! Contact rewriting over TCP: phones behind NAT register over their own TCP connections
//! (spread over two workers); the registrar and the core talk UDP. A request the core sends
//! to a phone's rewritten Contact must reach that phone over the connection its REGISTER
//! came on, whichever worker the request arrives at (the contact table keeps the flow's
//! connection id; the runtime hands the request to the worker that owns it).

mod runtime_support;

use std::net::{SocketAddr, UdpSocket};

use ferrovia::proxy::NextHop;
use ferrovia::record::StreamEvent;
use ferrovia::settings::ContactSettings;
use runtime_support::sip::{header, response, top_via_sent_by};
use runtime_support::tcp::{Family, SipStream, dual_settings};
use runtime_support::{RECV_LIMIT, recv_text, start_service};

/// Twenty phones: all on the worker the core's UDP flow reaches is a 1 in 2^20 draw, so
/// some requests must cross workers.
const PHONES: usize = 20;

fn register(phone: usize, proxy: SocketAddr) -> String {
    format!(
        "REGISTER sip:{proxy};transport=tcp SIP/2.0\r\n\
         Via: SIP/2.0/TCP 192.168.1.{phone}:5062;branch=z9hG4bK-reg{phone};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:p{phone}@example.net>;tag=r{phone}\r\n\
         To: <sip:p{phone}@example.net>\r\n\
         Call-ID: reg-{phone}@phone\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <{}>;expires=600\r\n\
         Content-Length: 0\r\n\r\n",
        private_contact(phone)
    )
}

fn private_contact(phone: usize) -> String {
    format!("sip:p{phone}@192.168.1.{phone}:5062;transport=tcp")
}

fn invite_to(uri: &str, core: SocketAddr, call: &str) -> String {
    format!(
        "INVITE {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {core};branch=z9hG4bK-{call}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:core@example.net>;tag=c-{call}\r\n\
         To: <sip:callee@example.net>\r\n\
         Call-ID: {call}@core\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The `sip:USER@HOST...` inside a Contact value, up to `>` or `;`.
fn contact_uri(contact: &str) -> &str {
    let start = contact.find("sip:").expect("a SIP contact");
    let end = contact[start..]
        .find(['>', ';'])
        .map_or(contact.len(), |e| start + e);
    &contact[start..end]
}

#[test]
fn phones_registered_over_tcp_are_reached_over_their_connections() {
    let core = UdpSocket::bind("127.0.0.1:0").unwrap();
    core.set_read_timeout(Some(RECV_LIMIT)).unwrap();
    let core_addr = core.local_addr().unwrap();
    let mut settings = dual_settings(Family::V4, 2);
    settings.next_hop = Some(NextHop::parse(&format!("sip:{core_addr}")).unwrap());
    settings.rewrite_contact = Some(ContactSettings::default());
    let server = start_service(&settings);
    let (udp, tcp) = (server.local_addrs()[0], server.local_addrs()[1]);

    let mut phones: Vec<SipStream> = (0..PHONES).map(|_| SipStream::connect(tcp)).collect();
    let mut rewritten = Vec::new();
    for (i, phone) in phones.iter_mut().enumerate() {
        phone.send(register(i, tcp).as_bytes());
        let (forwarded, _) = recv_text(&core);
        let contact = header(&forwarded, "Contact").expect("a rewritten Contact");
        assert!(!contact.contains("192.168.1."), "{contact}");
        rewritten.push(contact_uri(contact).to_owned());
        let ok = response(&forwarded, 200, "OK");
        core.send_to(ok.as_bytes(), top_via_sent_by(&forwarded).unwrap())
            .unwrap();
        assert!(phone.recv().starts_with("SIP/2.0 200"));
    }
    for (i, uri) in rewritten.iter().enumerate() {
        let call = format!("to-{i}");
        core.send_to(invite_to(uri, core_addr, &call).as_bytes(), udp)
            .unwrap();
    }
    for (i, phone) in phones.iter_mut().enumerate() {
        let invite = phone.recv();
        let want = format!("INVITE {} SIP/2.0\r\n", private_contact(i));
        assert!(invite.starts_with(&want), "phone {i} got:\n{invite}");
        assert!(invite.contains(&format!("to-{i}@core")), "{invite}");
    }

    let total = server.shutdown().counters();
    assert_eq!(total.stream(StreamEvent::Connected), 0, "{total:?}");
    assert!(total.stream(StreamEvent::HandedOff) > 0, "{total:?}");
    assert_eq!(total.send_errors(), 0, "{total:?}");
}

//! Contact rewriting end to end, over real loopback sockets through the whole service: a UAC
//! whose Contact names an address it does not send from (a NATed phone) registers through
//! ferrovia; the registrar sees only the rewritten Contact; a request the core sends to that
//! Contact reaches the UAC at its real source address with its original Request-URI; a forged
//! token is refused; the table's counters reach `/metrics`.

mod runtime_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferrovia::contact::TOKEN_LEN;
use ferrovia::proxy::NextHop;
use ferrovia::service::Service;
use ferrovia::settings::{ContactSettings, ListenAddr, Metrics, Settings};
use runtime_support::sip::{header, response, top_via_sent_by};
use runtime_support::{http_get, peer, recv_text};

/// The Contact the phone puts in its REGISTER: a private address it is not reachable at.
const PRIVATE_CONTACT: &str = "sip:alice@192.168.1.20:5062;transport=udp";

fn settings(registrar: SocketAddr) -> Settings {
    Settings {
        listen: vec![ListenAddr::udp(SocketAddr::from(([127, 0, 0, 1], 0)))],
        workers: 2,
        metrics: Metrics::On(SocketAddr::from(([127, 0, 0, 1], 0))),
        next_hop: Some(NextHop::parse(&format!("sip:{registrar}")).unwrap()),
        rewrite_contact: Some(ContactSettings::default()),
        ..Settings::default()
    }
}

fn register(from: SocketAddr, proxy: SocketAddr) -> String {
    format!(
        "REGISTER sip:{proxy} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-reg1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.net>;tag=r1\r\n\
         To: <sip:alice@example.net>\r\n\
         Call-ID: reg-{}@phone\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <{PRIVATE_CONTACT}>;expires=600\r\n\
         Content-Length: 0\r\n\r\n",
        from.port()
    )
}

fn invite_to(uri: &str, core: SocketAddr, call: &str) -> String {
    format!(
        "INVITE {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {core};branch=z9hG4bK-{call}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@example.net>;tag=c-{call}\r\n\
         To: <sip:alice@example.net>\r\n\
         Call-ID: {call}@core\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:bob@{core}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The user part of `<sip:USER@host...>` in a Contact value.
fn contact_user(contact: &str) -> &str {
    let start = contact.find("sip:").expect("a SIP contact") + 4;
    let end = start + contact[start..].find('@').expect("a user part");
    &contact[start..end]
}

#[test]
fn a_natted_phone_registers_and_is_reached_over_its_real_flow() {
    let (phone, core) = (peer(), peer());
    let (phone_addr, core_addr) = (phone.local_addr().unwrap(), core.local_addr().unwrap());
    let service = Service::start(&settings(core_addr)).expect("the service starts");
    let proxy = service.local_addrs()[0];

    // REGISTER: the registrar (the core socket) sees the token, never the private address.
    phone
        .send_to(register(phone_addr, proxy).as_bytes(), proxy)
        .unwrap();
    let (forwarded, _) = recv_text(&core);
    let contact = header(&forwarded, "Contact").expect("a Contact");
    let token = contact_user(contact);
    assert_eq!(token.len(), TOKEN_LEN, "{contact}");
    assert!(
        contact.starts_with(&format!("<sip:{token}@{proxy};transport=udp>")),
        "{contact}"
    );
    assert!(contact.ends_with(";expires=600"), "{contact}");
    assert!(
        !forwarded.contains("192.168.1.20:5062;transport"),
        "{forwarded}"
    );
    let ok = response(&forwarded, 200, "OK");
    core.send_to(ok.as_bytes(), top_via_sent_by(&forwarded).unwrap())
        .unwrap();
    let (answer, from) = recv_text(&phone);
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert_eq!(from, proxy);

    // The core calls the rewritten contact: the phone gets it at its real address.
    let rewritten = format!("sip:{token}@{proxy}");
    core.send_to(invite_to(&rewritten, core_addr, "call1").as_bytes(), proxy)
        .unwrap();
    let (invite, from) = recv_text(&phone);
    assert_eq!(from, proxy);
    assert!(
        invite.starts_with(&format!("INVITE {PRIVATE_CONTACT} SIP/2.0\r\n")),
        "{invite}"
    );
    // Rewriting works both ways: the core's own Contact reached the phone as a token too.
    let core_contact = header(&invite, "Contact").expect("a Contact");
    assert_eq!(
        contact_user(core_contact).len(),
        TOKEN_LEN,
        "{core_contact}"
    );
    assert!(
        !invite.contains(&format!("sip:bob@{core_addr}")),
        "{invite}"
    );

    // A forged token is refused with 404, back to the core.
    let mut forged = token.as_bytes().to_vec();
    forged[5] = if forged[5] == b'q' { b'r' } else { b'q' };
    let forged = format!("sip:{}@{proxy}", String::from_utf8(forged).unwrap());
    core.send_to(invite_to(&forged, core_addr, "call2").as_bytes(), proxy)
        .unwrap();
    let (refused, _) = recv_text(&core);
    assert!(refused.starts_with("SIP/2.0 404"), "{refused}");

    // The counters reach /metrics (the stats thread reads the table at each scrape).
    let metrics = service.metrics_addr().expect("metrics are served");
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = http_get(metrics, "/metrics");
        if text.contains("ferrovia_contact_restores_total 1") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for line in [
        "ferrovia_contact_rewrites_total 2",
        "ferrovia_contact_restores_total 1",
        "ferrovia_contact_forged_total 1",
        "ferrovia_contact_table_entries 2",
    ] {
        assert!(
            text.contains(line),
            "{line} missing from /metrics:\n{}",
            text.lines()
                .filter(|l| l.starts_with("ferrovia_contact"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert_eq!(service.shutdown().failed_workers, 0);
}

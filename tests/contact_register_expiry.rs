//! Issue 10 end to end, over real loopback sockets through the whole service: a phone behind
//! NAT registers through ferrovia with contact rewriting; a registrar stand-in grants less than
//! the phone asked for. The phone must see its own Contact — not the token the registrar saw —
//! with the granted expiry (RFC 3261 §10.2.4), and ferrovia's entry for it must follow the
//! grant, not the request.

mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ferrovia::contact::TOKEN_LEN;
use ferrovia::proxy::NextHop;
use ferrovia::service::Service;
use ferrovia::settings::{ContactSettings, ListenAddr, Metrics, Settings};
use runtime_support::sip::{header, headers, response, status, top_via_sent_by};
use runtime_support::{peer, recv_text};

/// The Contact the phone writes: a private address it is not reachable at.
const PRIVATE_CONTACT: &str = "sip:dave-0x5650@192.168.1.20:40461";

fn settings(registrar: SocketAddr) -> Settings {
    Settings {
        listen: vec![ListenAddr::udp(SocketAddr::from(([127, 0, 0, 1], 0)))],
        workers: 2,
        metrics: Metrics::Off,
        next_hop: Some(NextHop::parse(&format!("sip:{registrar}")).unwrap()),
        rewrite_contact: Some(ContactSettings::default()),
        ..Settings::default()
    }
}

fn register(proxy: SocketAddr, call: &str, asked: u32) -> String {
    format!(
        "REGISTER sip:{proxy} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.168.1.20:40461;branch=z9hG4bK-{call};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:dave@example.net>;tag=r-{call}\r\n\
         To: <sip:dave@example.net>\r\n\
         Call-ID: {call}@phone\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <{PRIVATE_CONTACT}>;expires={asked}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The registrar stand-in: takes one REGISTER, binds its Contact for `granted` seconds and
/// lists the binding in its 200 (RFC 3261 §10.3 step 8). Returns the URI it bound.
fn registrar_grants(registrar: &UdpSocket, granted: u32) -> String {
    let (request, _) = recv_text(registrar);
    let contact = header(&request, "Contact").expect("a Contact");
    let uri = contact
        .strip_prefix('<')
        .and_then(|c| c.split_once('>'))
        .map(|(uri, _)| uri.to_owned())
        .expect("a Contact in angle brackets");
    let ok = response(&request, 200, "OK").replace(
        "Content-Length: 0\r\n",
        &format!("Contact: <{uri}>;expires={granted}\r\nContent-Length: 0\r\n"),
    );
    let to = top_via_sent_by(&request).expect("ferrovia's Via");
    registrar.send_to(ok.as_bytes(), to).unwrap();
    uri
}

/// The user part of a `sip:USER@host` URI.
fn user(uri: &str) -> &str {
    let rest = uri.strip_prefix("sip:").expect("a SIP URI");
    &rest[..rest.find('@').expect("a user part")]
}

/// A phone's REGISTER (asking 60 s) through a fresh service, granted `granted` s by the
/// registrar stand-in, and what came back to the phone.
struct Registered {
    registrar: UdpSocket,
    service: Service,
    proxy: SocketAddr,
    /// The URI the registrar bound.
    bound: String,
    /// The 200 the phone received, and where from.
    ok: (String, SocketAddr),
}

fn register_through(call: &str, granted: u32) -> Registered {
    let (phone, registrar) = (peer(), peer());
    let service = Service::start(&settings(registrar.local_addr().unwrap())).expect("starts");
    let proxy = service.local_addrs()[0];
    phone
        .send_to(register(proxy, call, 60).as_bytes(), proxy)
        .unwrap();
    let bound = registrar_grants(&registrar, granted);
    let ok = recv_text(&phone);
    Registered {
        registrar,
        service,
        proxy,
        bound,
        ok,
    }
}

#[test]
fn the_phone_sees_its_own_contact_with_the_granted_expiry() {
    let Registered {
        service,
        proxy,
        bound,
        ok: (ok, from),
        ..
    } = register_through("reg1", 10);
    assert_eq!(
        user(&bound).len(),
        TOKEN_LEN,
        "the registrar saw a token: {bound}"
    );
    assert_eq!(from, proxy);
    assert_eq!(status(&ok), Some(200), "{ok}");
    let contacts: Vec<&str> = headers(&ok, "Contact").collect();
    assert_eq!(
        contacts,
        [format!("<{PRIVATE_CONTACT}>;expires=10")],
        "the phone finds the contact it created, with the granted expiry:\n{ok}"
    );
    assert!(
        !ok.contains(user(&bound)),
        "no token reaches the phone:\n{ok}"
    );
    assert_eq!(service.shutdown().failed_workers, 0);
}

#[test]
fn the_contact_lapses_when_the_grant_does_not_when_the_request_would() {
    // Asked 60 s, granted 1 s.
    let Registered {
        registrar,
        service,
        proxy,
        bound,
        ok: (ok, _),
    } = register_through("reg2", 1);
    assert!(ok.contains(";expires=1\r\n"), "{ok}");

    // Past the grant, well within the asked 60 s: the core's request for the binding finds
    // it gone, as the registrar's own binding is: 480 while the entry awaits the sweep, 404
    // once the service's periodic sweep removed it.
    std::thread::sleep(Duration::from_millis(1_300));
    let invite = format!(
        "INVITE {bound} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {core};branch=z9hG4bK-late\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:erin@example.net>;tag=c-late\r\n\
         To: <sip:dave@example.net>\r\n\
         Call-ID: late@core\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n",
        core = registrar.local_addr().unwrap()
    );
    registrar.send_to(invite.as_bytes(), proxy).unwrap();
    let (refused, _) = recv_text(&registrar);
    assert!(
        matches!(status(&refused), Some(480 | 404)),
        "the entry outlived its grant:\n{refused}"
    );
    assert_eq!(service.shutdown().failed_workers, 0);
}

//! RFC 4475 ("SIP Torture Test Messages") §3, transcribed by hand (RFC line ends are CRLF;
//! written here with `\n` and converted), each with the outcome the RFC asks of a proxy, as
//! ferrovia, a stateless proxy, gives it. Every message ferrovia sends is also checked by the
//! strict reader (`tests/common/strict.rs`): same header count, body and Content-Length.
//!
//! Where ferrovia's outcome is not the one the RFC names for a UAS, the case says why (a
//! stateless proxy does not read Date, display names or Contact; the UAS answers those).
//! Issue 11 / `docs/CORE.md` "RFC 4475" has the table.

mod common;

use std::time::Instant;

use ferrovia::proxy::{DropReason, Listener, NextHop, Outcome, ProxyConfig, Tables, Transport};
use ferrovia::sip::Message;

const PROXY: &str = common::PROXY_ADDR;
const CLIENT: &str = "192.0.2.99:40000";

fn proxy() -> common::Core {
    let addr = PROXY.parse().unwrap();
    let mut config = ProxyConfig::new(
        Listener {
            transport: Transport::Udp,
            addr,
            advertise: None,
        },
        *b"ferrovia-rfc4475",
    );
    config.listeners.push(Listener {
        transport: Transport::Tcp,
        addr,
        advertise: None,
    });
    config.next_hop = Some(NextHop::parse("sip:10.0.0.9:5060").unwrap());
    let to = "10.0.0.7".parse().unwrap();
    for host in [
        "example.com",
        "example.net",
        "example.org",
        "company.com",
        "example.edu",
        "services.example.com",
    ] {
        config.hosts.push((host.to_owned(), to));
    }
    common::Core::new(config, Tables::default())
}

/// The RFC's CRLF line ends, written as `\n` here.
fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

/// The SDP body the RFC uses in most messages, for the address shown.
fn sdp(ip: &str) -> String {
    format!(
        "v=0\no=mhandley 29739 7272939 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt=0 0\n\
m=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    /// Forwarded (and canonical).
    Forward,
    /// Answered with this status.
    Reply(u16),
    /// Dropped for this reason.
    Drop(DropReason),
}

struct Sent {
    outcome: Outcome,
    bytes: Vec<u8>,
}

fn handle(raw: &[u8], transport: Transport, source: &str) -> Sent {
    let input = common::input_on(raw, source, transport, None, Instant::now());
    let (outcome, bytes) = proxy().exchange(input);
    Sent { outcome, bytes }
}

/// Runs `raw` over UDP, checks the outcome, and that whatever is sent is canonical.
fn expect(name: &str, raw: &[u8], want: Expect) -> Sent {
    let sent = handle(raw, Transport::Udp, CLIENT);
    let got = match sent.outcome {
        Outcome::Forward(_) => Expect::Forward,
        Outcome::Reply { status, .. } => Expect::Reply(status),
        Outcome::Drop(r) => Expect::Drop(r),
        Outcome::Park(_) => panic!("{name}: parked without a resolver"),
    };
    assert_eq!(
        got,
        want,
        "{name}:\n{}",
        String::from_utf8_lossy(&sent.bytes)
    );
    if !sent.bytes.is_empty() {
        common::differential::agree(&sent.bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    sent
}

fn text(sent: &Sent) -> String {
    String::from_utf8_lossy(&sent.bytes).into_owned()
}

// ---- §3.1.1 valid messages: a proxy forwards them --------------------------------------------

/// §3.1.1.1 wsinv: a short tortuous INVITE — white space before colons, folded values,
/// mixed-case and compact names, a folded multi-value Via, an escaped quote in a display
/// name. Forwarded; its spaced Content-Length line is written plainly.
#[test]
fn wsinv_a_short_tortuous_invite() {
    let raw = crlf(&format!(
        "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\n\
TO :\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\n  ;\n  tag = 98asjd8\n\
MaX-fOrWaRdS: 0068\n\
Call-ID: wsinv.ndaksdj@192.0.2.1\n\
Content-Length   : 150\n\
cseq: 0009\n  INVITE\n\
Via  : SIP  /   2.0\n /UDP\n    192.0.2.2;branch=390skdjuw\n\
s :\n\
NewFangledHeader:   newfangled value\n continued newfangled value\n\
UnknownHeaderWithUnusualValue: ;;,,;;,;\n\
Content-Type: application/sdp\n\
Route:\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n\
v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n  branch  =   z9hG4bK9ikj8  ,\n \
SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n z9hG4bK30239\n\
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\n      newvalue ;\n  \
secondparam ; q = 0.33\n\n{}",
        sdp("192.0.2.3").replace("c=IN IP4 192.0.2.3", "c=IN IP4 192.0.2.4")
    ));
    let sent = expect("wsinv", &raw, Expect::Forward);
    let text = text(&sent);
    assert!(text.contains("MaX-fOrWaRdS: 67\r\n"), "{text}");
    assert!(
        text.contains("\r\nContent-Length: 150\r\n\r\nv=0"),
        "{text}"
    );
    assert!(!text.contains("Content-Length   :"), "{text}");
}

/// §3.1.1.3 esc01: escapes in the Request-URI, To, From and a folded Contact.
#[test]
fn esc01_valid_use_of_escapes() {
    let raw = crlf(&format!(
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\n\
To: sip:%75se%72@example.com\n\
From: <sip:I%20have%20spaces@example.net>;tag=938\n\
Max-Forwards: 87\n\
i: esc01.239409asdfakjkn23onasd0-3234\n\
CSeq: 234234 INVITE\n\
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\n\
C: application/sdp\n\
Contact:\n  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\n\
Content-Length: 150\n\n{}",
        sdp("192.0.2.1")
    ));
    let sent = expect("esc01", &raw, Expect::Forward);
    assert!(
        text(&sent).starts_with("INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n")
    );
}

/// §3.1.1.4 escnull: escaped NULs in URIs.
#[test]
fn escnull_escaped_nulls() {
    let raw = crlf(
        "REGISTER sip:example.com SIP/2.0\n\
To: sip:null-%00-null@example.com\n\
From: sip:null-%00-null@example.com;tag=839923423\n\
Max-Forwards: 70\n\
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd\n\
CSeq: 14398234 REGISTER\n\
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\n\
Contact: <sip:%00@host5.example.com>\n\
Contact: <sip:%00%00@host5.example.com>\n\
L:0\n\n",
    );
    expect("escnull", &raw, Expect::Forward);
}

/// §3.1.1.5 esc02: `%` that is not an escape, in the method, Via branch and header name.
#[test]
fn esc02_percent_that_is_not_an_escape() {
    let raw = crlf(
        "RE%47IST%45R sip:registrar.example.com SIP/2.0\n\
To: \"%Z%45\" <sip:resource@example.com>\n\
From: \"%Z%45\" <sip:resource@example.com>;tag=f232jadfj23\n\
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\n\
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234\n\
CSeq: 29344 RE%47IST%45R\n\
Max-Forwards: 70\n\
Contact: <sip:alias1@host1.example.com>\n\
C%6Fntact: <sip:alias2@host2.example.com>\n\
Contact: <sip:alias3@host3.example.com>\n\
l: 0\n\n",
    );
    // registrar.example.com is not in the host table: the proxy cannot resolve it.
    expect("esc02", &raw, Expect::Reply(503));
}

/// §3.1.1.6 lwsdisp: no LWS between the display name and `<`.
#[test]
fn lwsdisp_no_space_before_angle() {
    let raw = crlf(
        "OPTIONS sip:user@example.com SIP/2.0\n\
To: sip:user@example.com\n\
From: caller<sip:caller@example.com>;tag=323\n\
Max-Forwards: 70\n\
Call-ID: lwsdisp.1234abcd@funky.example.com\n\
CSeq: 60 OPTIONS\n\
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw\n\
l: 0\n\n",
    );
    expect("lwsdisp", &raw, Expect::Forward);
}

/// §3.1.1.7 longreq (shortened to the RFC's shapes): 34 Vias with every spelling of the name
/// and white space before the colon, long values, compact Content-Length.
#[test]
fn longreq_long_values_and_many_vias() {
    let mut vias = String::new();
    let spellings = [
        "Via", "v", "V", "Via", "ViA", "VIa", "VIA", "via", "viA", "vIa", "vIA", "V ", "v ", "V  ",
        "v  ", "Via ", "Via  ",
    ];
    for (i, name) in spellings.iter().enumerate() {
        vias.push_str(&format!("{name}: SIP/2.0/TCP sip{}.example.com\n", 33 - i));
    }
    for i in (1..=16).rev() {
        vias.push_str(&format!("Via: SIP/2.0/TCP sip{i}.example.com\n"));
    }
    let long = "long".repeat(50);
    let raw = crlf(&format!(
        "INVITE sip:user@example.com SIP/2.0\n\
To: \"I have a user name of {long} proportion\"<sip:user@example.com:6000;unknownparam1=very{long}value>\n\
F: sip:amazinglylongcallername@example.net;tag=12982982982982982982982424;unknownheaderparamname=unknowheaderparamvalue\n\
Call-ID: longreq.one{long}callid\n\
CSeq: 3882340 INVITE\n\
Unknown-{long}-Name: unknown-{long}-value; unknown-{long}-parameter-name = unknown-{long}-parameter-value\n\
Via: SIP/2.0/TCP sip34.example.com;branch=z9hG4bK{long}\n\
{vias}\
Max-Forwards: 70\n\
Contact: <sip:amazinglylongcallername@host5.example.net>\n\
Content-Type: application/sdp\n\
l: 150\n\n{}",
        sdp("192.0.2.1")
    ));
    expect("longreq", &raw, Expect::Forward);
}

/// §3.1.1.8 dblreq: a second request after Content-Length in one datagram is discarded
/// (RFC 3261 §18.3); the first is forwarded alone.
#[test]
fn dblreq_extra_octets_in_a_datagram() {
    let raw = crlf(&format!(
        "REGISTER sip:example.com SIP/2.0\n\
To: sip:j.user@example.com\n\
From: sip:j.user@example.com;tag=43251j3j324\n\
Max-Forwards: 8\n\
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\n\
Contact: sip:j.user@host.example.com\n\
CSeq: 8 REGISTER\n\
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\n\
Content-Length: 0\n\n\
INVITE sip:joe@example.com SIP/2.0\n\
t: sip:joe@example.com\n\
From: sip:caller@example.net;tag=141334\n\
Max-Forwards: 8\n\
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15\n\
CSeq: 8 INVITE\n\
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234\n\
Content-Type: application/sdp\n\
Content-Length: 150\n\n{}",
        sdp("192.0.2.15")
    ));
    let sent = expect("dblreq", &raw, Expect::Forward);
    assert!(!text(&sent).contains("INVITE"), "{}", text(&sent));
}

/// §3.1.1.9 semiuri: `;` in the user part, a folded Accept.
#[test]
fn semiuri_semicolons_in_the_user_part() {
    let raw = crlf(
        "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\n\
To: sip:j_user@example.com\n\
From: sip:caller@example.org;tag=33242\n\
Max-Forwards: 3\n\
Call-ID: semiuri.0ha0isndaksdj\n\
CSeq: 8 OPTIONS\n\
Accept: application/sdp, application/pkcs7-mime,\n        multipart/mixed, multipart/signed,\n        message/sip, message/sipfrag\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\n\
l: 0\n\n",
    );
    let sent = expect("semiuri", &raw, Expect::Forward);
    assert!(
        text(&sent).starts_with("OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\r\n")
    );
}

/// §3.1.1.10 transports: Vias with SCTP, TLS and an unknown transport below the top one.
#[test]
fn transports_varied_and_unknown() {
    let raw = crlf(
        "OPTIONS sip:user@example.com SIP/2.0\n\
To: sip:user@example.com\n\
From: <sip:caller@example.com>;tag=323\n\
Max-Forwards: 70\n\
Call-ID:  transports.kijh4akdnaqjkwendsasfdj\n\
Accept: application/sdp\n\
CSeq: 60 OPTIONS\n\
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw\n\
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\n\
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\n\
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\n\
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\n\
l: 0\n\n",
    );
    expect("transports", &raw, Expect::Forward);
}

// ---- §3.1.2 invalid messages ---------------------------------------------------------------

/// §3.1.2.2 clerr: Content-Length larger than the message: 400.
#[test]
fn clerr_content_length_larger_than_message() {
    let raw = crlf(&format!(
        "INVITE sip:user@example.com SIP/2.0\n\
Max-Forwards: 80\n\
To: sip:j.user@example.com\n\
From: sip:caller@example.net;tag=93942939o2\n\
Contact: <sip:caller@hungry.example.net>\n\
Call-ID: clerr.0ha0isndaksdjweiafasdk3\n\
CSeq: 8 INVITE\n\
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523\n\
Content-Type: application/sdp\n\
Content-Length: 9999\n\n{}",
        sdp("192.0.2.155")
    ));
    expect("clerr", &raw, Expect::Reply(400));
}

/// §3.1.2.3 ncl: negative Content-Length: 400.
#[test]
fn ncl_negative_content_length() {
    let raw = crlf(&format!(
        "INVITE sip:user@example.com SIP/2.0\n\
Max-Forwards: 254\n\
To: sip:j.user@example.com\n\
From: sip:caller@example.net;tag=32394234\n\
Call-ID: ncl.0ha0isndaksdj2193423r542w35\n\
CSeq: 0 INVITE\n\
Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw\n\
Contact: <sip:caller@example53.example.net>\n\
Content-Type: application/sdp\n\
Content-Length: -999\n\n{}",
        sdp("192.0.2.53")
    ));
    expect("ncl", &raw, Expect::Reply(400));
}

/// §3.1.2.4 scalar02: CSeq past 2**31 (and Max-Forwards 300, Expires overlarge): 400.
#[test]
fn scalar02_overlarge_request_scalars() {
    let raw = crlf(&format!(
        "REGISTER sip:example.com SIP/2.0\n\
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3\n\
To: <sip:user@example.com>\n\
From: <sip:user@example.com>;tag=239232jh3\n\
CSeq: 36893488147419103232 REGISTER\n\
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\n\
Max-Forwards: 300\n\
Expires: 1{}\n\
Contact: <sip:user@host129.example.com>\n  ;expires=280297596632815\n\
Content-Length: 0\n\n",
        "0".repeat(100)
    ));
    expect("scalar02", &raw, Expect::Reply(400));
}

/// §3.1.2.5 scalarlg: a response with overlarge scalars, not ours: discarded.
#[test]
fn scalarlg_overlarge_response_scalars() {
    let raw = crlf(
        "SIP/2.0 503 Service Unavailable\n\
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129\n\
To: <sip:user@example.com>\n\
From: <sip:other@example.net>;tag=2easdjfejw\n\
CSeq: 9292394834772304023312 OPTIONS\n\
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r\n\
Retry-After: 949302838503028349304023988\n\
Warning: 1812 overture \"In Progress\"\n\
Content-Length: 0\n\n",
    );
    expect("scalarlg", &raw, Expect::Drop(DropReason::ResponseNotOurs));
}

/// §3.1.2.7 ltgtruri: `<>` around the Request-URI: 400 (not 416: it is no scheme at all).
#[test]
fn ltgtruri_angle_brackets_around_the_request_uri() {
    let raw = crlf(&format!(
        "INVITE <sip:user@example.com> SIP/2.0\n\
To: sip:user@example.com\n\
From: sip:caller@example.net;tag=39291\n\
Max-Forwards: 23\n\
Call-ID: ltgtruri.1@192.0.2.5\n\
CSeq: 1 INVITE\n\
Via: SIP/2.0/UDP 192.0.2.5\n\
Contact: <sip:caller@host5.example.net>\n\
Content-Type: application/sdp\n\
Content-Length: 159\n\n{}",
        sdp("192.0.2.5").replace("t=0 0", "t=3149328700 0")
    ));
    expect("ltgtruri", &raw, Expect::Reply(400));
}

/// §3.1.2.8 lwsruri: white space inside the Request-URI: 400.
#[test]
fn lwsruri_white_space_in_the_request_uri() {
    let raw = crlf(&format!(
        "INVITE sip:user@example.com; lr SIP/2.0\n\
To: sip:user@example.com;tag=3xfe-9921883-z9f\n\
From: sip:caller@example.net;tag=231413434\n\
Max-Forwards: 5\n\
Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423\n\
CSeq: 2130706432 INVITE\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395\n\
Contact: <sip:caller@host1.example.net>\n\
Content-Type: application/sdp\n\
Content-Length: 159\n\n{}",
        sdp("192.0.2.1").replace("t=0 0", "t=3149328700 0")
    ));
    let sent = expect("lwsruri", &raw, Expect::Reply(400));
    assert!(text(&sent).starts_with("SIP/2.0 400 Bad Request Line\r\n"));
}

/// §3.1.2.9 lwsstart: several SP between the Request-Line's elements: 400.
#[test]
fn lwsstart_multiple_spaces_in_the_request_line() {
    let raw = crlf(&format!(
        "INVITE  sip:user@example.com  SIP/2.0\n\
Max-Forwards: 8\n\
To: sip:user@example.com\n\
From: sip:caller@example.net;tag=8814\n\
Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com\n\
CSeq: 1893884 INVITE\n\
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923\n\
Contact: <sip:caller@host1.example.net>\n\
Content-Type: application/sdp\n\
Content-Length: 150\n\n{}",
        sdp("192.0.2.1")
    ));
    expect("lwsstart", &raw, Expect::Reply(400));
}

/// §3.1.2.10 trws: SP after the version: accepted, and removed from what is forwarded.
#[test]
fn trws_trailing_spaces_after_the_version() {
    let raw = crlf(
        "OPTIONS sip:remote-target@example.com SIP/2.0  \n\
Via: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093\n\
To: <sip:remote-target@example.com>\n\
From: <sip:local-resource@example.com>;tag=329429089\n\
Call-ID: trws.oicu34958239neffasdhr2345r\n\
Accept: application/sdp\n\
CSeq: 238923 OPTIONS\n\
Max-Forwards: 70\n\
Content-Length: 0\n\n",
    );
    let sent = expect("trws", &raw, Expect::Forward);
    assert!(text(&sent).starts_with("OPTIONS sip:remote-target@example.com SIP/2.0\r\n"));
}

/// §3.1.2.11 escruri: escaped headers in the Request-URI (RFC 3261 §19.1.5 forbids them
/// there): stripped from the forwarded Request-URI.
#[test]
fn escruri_escaped_headers_in_the_request_uri() {
    let raw = crlf(&format!(
        "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\n\
To: sip:user@example.com\n\
From: sip:caller@example.net;tag=341518\n\
Max-Forwards: 7\n\
Contact: <sip:caller@host39923.example.net>\n\
Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5\n\
CSeq: 149209342 INVITE\n\
Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw\n\
Content-Type: application/sdp\n\
Content-Length: 150\n\n{}",
        sdp("192.0.2.1")
    ));
    let sent = expect("escruri", &raw, Expect::Forward);
    assert!(
        text(&sent).starts_with("INVITE sip:user@example.com SIP/2.0\r\n"),
        "{}",
        text(&sent)
    );
    assert!(!text(&sent).contains("Route=%3C"));
}

/// §3.1.2.12 baddate: a stateless proxy does not read Date; the UAS judges it.
#[test]
fn baddate_is_not_the_proxys_business() {
    let raw = crlf(&format!(
        "INVITE sip:user@example.com SIP/2.0\n\
To: sip:user@example.com\n\
From: sip:caller@example.net;tag=2234923\n\
Max-Forwards: 70\n\
Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234\n\
CSeq: 1392934 INVITE\n\
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\n\
Date: Fri, 01 Jan 2010 16:00:00 EST\n\
Contact: <sip:caller@host5.example.net>\n\
Content-Type: application/sdp\n\
Content-Length: 150\n\n{}",
        sdp("192.0.2.5")
    ));
    expect("baddate", &raw, Expect::Forward);
}

/// §3.1.2.16 badvers: SIP/7.0: 505 Version Not Supported (RFC 3261 §8.2.2 via §16.3).
#[test]
fn badvers_unknown_protocol_version() {
    let raw = crlf(
        "OPTIONS sip:t.watson@example.org SIP/7.0\n\
Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\n\
Max-Forwards:     10\n\
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\n\
To:      T. Watson <sip:t.watson@example.org>\n\
Call-ID: badvers01.31415@c.example.com\n\
CSeq:    1 OPTIONS\n\
l: 0\n\n",
    );
    let sent = expect("badvers", &raw, Expect::Reply(505));
    assert!(text(&sent).starts_with("SIP/2.0 505 Version Not Supported\r\n"));
}

/// §3.1.2.17 mismatch01: CSeq method differs from the Request-Line: 400.
#[test]
fn mismatch01_cseq_method_mismatch() {
    let raw = crlf(
        "OPTIONS sip:user@example.com SIP/2.0\n\
To: sip:j.user@example.com\n\
From: sip:caller@example.net;tag=34525\n\
Max-Forwards: 6\n\
Call-ID: mismatch01.dj0234sxdfl3\n\
CSeq: 8 INVITE\n\
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\n\
l: 0\n\n",
    );
    expect("mismatch01", &raw, Expect::Reply(400));
}

/// §3.1.2.18 mismatch02: an unknown method with a CSeq saying INVITE: 400.
#[test]
fn mismatch02_unknown_method_with_cseq_mismatch() {
    let raw = crlf(
        "NEWMETHOD sip:user@example.com SIP/2.0\n\
To: sip:j.user@example.com\n\
From: sip:caller@example.net;tag=34525\n\
Max-Forwards: 6\n\
Call-ID: mismatch02.dj0234sxdfl3\n\
CSeq: 8 INVITE\n\
Contact: <sip:caller@host.example.net>\n\
Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw\n\
Content-Type: application/sdp\n\
l: 138\n\n\
v=0\n\
o=mhandley 29739 7272939 IN IP4 192.0.2.1\n\
c=IN IP4 192.0.2.1\n\
m=audio 49217 RTP/AVP 0 12\n\
m=video 3227 RTP/AVP 31\n\
a=rtpmap:31 LPC\n",
    );
    expect("mismatch02", &raw, Expect::Reply(400));
}

/// §3.1.2.19 bigcode: a status code of 4294967301: not a SIP message, discarded.
#[test]
fn bigcode_overlarge_response_code() {
    let raw = crlf(
        "SIP/2.0 4294967301 better not break the receiver\n\
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\n\
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i\n\
CSeq: 353494 INVITE\n\
From: <sip:user@example.com>;tag=39ansfi3\n\
To: <sip:user@example.edu>;tag=902jndnke3\n\
Content-Length: 0\n\
Contact: <sip:user@host105.example.com>\n\n",
    );
    expect("bigcode", &raw, Expect::Drop(DropReason::NotSip));
}

// ---- §3.2 transaction layer, §3.3 application layer ---------------------------------------

/// §3.2.1 badbranch: a branch that is only the magic cookie: a stateless proxy forwards.
#[test]
fn badbranch_cookie_only() {
    let raw = crlf(
        "OPTIONS sip:user@example.com SIP/2.0\n\
To: sip:user@example.com\n\
From: sip:caller@example.org;tag=33242\n\
Max-Forwards: 3\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK\n\
Accept: application/sdp\n\
Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n\n\
CSeq: 8 OPTIONS\n\
l: 0\n\n",
    );
    expect("badbranch", &raw, Expect::Forward);
}

/// §3.3.1 insuf: Call-ID, From, To and Max-Forwards missing: 400.
#[test]
fn insuf_missing_required_headers() {
    let raw = crlf(&format!(
        "INVITE sip:user@example.com SIP/2.0\n\
CSeq: 193942 INVITE\n\
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\n\
Content-Type: application/sdp\n\
l: 152\n\n{}",
        sdp("192.0.2.95")
    ));
    expect("insuf", &raw, Expect::Reply(400));
}

/// §3.3.2 unkscm: an unknown Request-URI scheme: 416.
#[test]
fn unkscm_unknown_scheme() {
    let raw = crlf(
        "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0\n\
To: sip:user@example.com\n\
From: sip:caller@example.net;tag=384\n\
Max-Forwards: 3\n\
Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34\n\
CSeq: 3923423 OPTIONS\n\
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234\n\
Content-Length: 0\n\n",
    );
    expect("unkscm", &raw, Expect::Reply(416));
}

/// §3.3.3 novelsc: a known but atypical scheme the proxy cannot route: 416.
#[test]
fn novelsc_atypical_scheme() {
    let raw = crlf(
        "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\n\
To: sip:user@example.com\n\
From: sip:caller@example.net;tag=384\n\
Max-Forwards: 3\n\
Call-ID: novelsc.asdfasser0q239nwsdfasdkl34\n\
CSeq: 3923423 OPTIONS\n\
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234\n\
Content-Length: 0\n\n",
    );
    expect("novelsc", &raw, Expect::Reply(416));
}

/// §3.3.4 unksm2: unknown schemes in To, From and Contact: the proxy forwards.
#[test]
fn unksm2_unknown_schemes_in_headers() {
    let raw = crlf(
        "REGISTER sip:example.com SIP/2.0\n\
To: isbn:2983792873\n\
From: <http://www.example.com>;tag=3234233\n\
Call-ID: unksm2.daksdj@hyphenated-host.example.com\n\
CSeq: 234902 REGISTER\n\
Max-Forwards: 70\n\
Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw\n\
Contact: <name:John_Smith>\n\
l: 0\n\n",
    );
    expect("unksm2", &raw, Expect::Forward);
}

/// §3.3.5 bext01: Proxy-Require: 420 with Unsupported. Its Via says TLS but it came over
/// UDP: the reply goes to the packet's source port, not 5061.
#[test]
fn bext01_proxy_require_and_a_via_naming_another_transport() {
    let raw = crlf(
        "OPTIONS sip:user@example.com SIP/2.0\n\
To: sip:j_user@example.com\n\
From: sip:caller@example.net;tag=242etr\n\
Max-Forwards: 6\n\
Call-ID: bext01.0ha0isndaksdj\n\
Require: nothingSupportsThis, nothingSupportsThisEither\n\
Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis\n\
CSeq: 8 OPTIONS\n\
Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw\n\
Content-Length: 0\n\n",
    );
    let sent = expect("bext01", &raw, Expect::Reply(420));
    assert!(
        text(&sent).contains("Unsupported: noProxiesSupportThis, norDoAnyProxiesSupportThis\r\n")
    );
    let Outcome::Reply { transmit, .. } = sent.outcome else {
        unreachable!()
    };
    assert_eq!(transmit.destination, CLIENT.parse().unwrap());
}

/// §3.3.8 multi01: two Call-IDs, CSeqs, Tos, Froms, Max-Forwards: 400.
#[test]
fn multi01_multiple_values_in_singleton_headers() {
    let raw = crlf(&format!(
        "INVITE sip:user@company.com SIP/2.0\n\
Contact: <sip:caller@host25.example.net>\n\
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw\n\
Max-Forwards: 70\n\
CSeq: 5 INVITE\n\
Call-ID: multi01.98asdh@192.0.2.1\n\
CSeq: 59 INVITE\n\
Call-ID: multi01.98asdh@192.0.2.2\n\
From: sip:caller@example.com;tag=3413415\n\
To: sip:user@example.com\n\
To: sip:other@example.net\n\
From: sip:caller@example.net;tag=2923420123\n\
Content-Type: application/sdp\n\
l: 154\n\
Contact: <sip:caller@host36.example.net>\n\
Max-Forwards: 5\n\n{}",
        sdp("192.0.2.25")
    ));
    let sent = expect("multi01", &raw, Expect::Reply(400));
    assert!(
        text(&sent).starts_with("SIP/2.0 400 Multiple CSeq\r\n"),
        "{}",
        text(&sent)
    );
}

/// §3.3.9 mcl01: two Content-Lengths: 400, never a guess at the body.
#[test]
fn mcl01_multiple_content_lengths() {
    let raw = crlf(
        "OPTIONS sip:user@example.com SIP/2.0\n\
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423\n\
To: sip:user@example.com\n\
From: sip:other@example.net;tag=3923942\n\
Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf\n\
CSeq: 15932 OPTIONS\n\
Content-Length: 13\n\
Max-Forwards: 60\n\
Content-Length: 5\n\
Content-Type: text/plain\n\n\
There's no way to know how many octets are supposed to be here.\n",
    );
    let sent = expect("mcl01", &raw, Expect::Reply(400));
    assert!(text(&sent).starts_with("SIP/2.0 400 Multiple Content-Length\r\n"));
    // Over a stream the framer refuses it too: one message, answered, connection closed.
    assert!(matches!(
        ferrovia::sip::next_frame(&raw, 65_536),
        ferrovia::sip::Frame::Unframed(_)
    ));
}

/// §3.3.10 bcast: a 200 whose next Via names 255.255.255.255. The RFC's top Via is the
/// proxy's; here it is one this proxy wrote (a stateless proxy recognises only its own).
#[test]
fn bcast_response_to_a_broadcast_address() {
    let invite = crlf(
        "INVITE sip:user@example.edu SIP/2.0\n\
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23\n\
Max-Forwards: 70\n\
Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf\n\
CSeq: 35 INVITE\n\
From: sip:user@example.com;tag=11141343\n\
To: sip:user@example.edu\n\
Content-Length: 0\n\n",
    );
    // The request itself came from a real address (received= is added, but the RFC case is a
    // Via a peer could forge on the response path): take our Via from the forward.
    let forwarded = handle(&invite, Transport::Udp, CLIENT);
    assert!(matches!(forwarded.outcome, Outcome::Forward(_)));
    let ours = text(&forwarded)
        .lines()
        .find(|l| l.starts_with("Via: SIP/2.0/UDP 192.0.2.10"))
        .unwrap()
        .to_owned();
    let raw = crlf(&format!(
        "SIP/2.0 200 OK\n\
{ours}\n\
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23\n\
Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf\n\
CSeq: 35 INVITE\n\
From: sip:user@example.com;tag=11141343\n\
To: sip:user@example.edu;tag=2229\n\
Content-Length: 154\n\
Content-Type: application/sdp\n\
Contact: <sip:user@host28.example.com>\n\n{}",
        sdp("192.0.2.198")
    ));
    let sent = handle(&raw, Transport::Udp, "10.0.0.7:5060");
    assert_eq!(sent.outcome, Outcome::Drop(DropReason::NotUnicast));
}

/// §3.3.11 zeromf: OPTIONS with Max-Forwards 0. RFC 4475 names 483; RFC 3261 §16.3 step 3
/// lets a proxy act as the final recipient of an OPTIONS instead (§11), which ferrovia does
/// (200, the keep-alive ping of many PBXes). Any other method gets the 483.
#[test]
fn zeromf_max_forwards_zero() {
    let zeromf = |method: &str| {
        crlf(&format!(
            "{method} sip:user@example.com SIP/2.0\n\
To: sip:user@example.com\n\
From: sip:caller@example.net;tag=3ghsd41\n\
Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas\n\
CSeq: 39234321 {method}\n\
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i\n\
Max-Forwards: 0\n\
Content-Length: 0\n\n"
        ))
    };
    expect("zeromf", &zeromf("OPTIONS"), Expect::Reply(200));
    expect("zeromf as INVITE", &zeromf("INVITE"), Expect::Reply(483));
}

/// §3.3.12 cparam01, §3.3.13 regescrt: REGISTERs with unusual Contacts: forwarded to the
/// registrar unchanged (contact rewriting off).
#[test]
fn register_contact_shapes_are_forwarded() {
    for (name, contact) in [
        (
            "cparam01",
            "Contact: sip:+19725552222@gw1.example.net;unknownparam",
        ),
        (
            "cparam02",
            "Contact: <sip:+19725552222@gw1.example.net;unknownparam>",
        ),
        (
            "regescrt",
            "M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
        ),
    ] {
        let raw = crlf(&format!(
            "REGISTER sip:example.com SIP/2.0\n\
Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw\n\
Max-Forwards: 70\n\
From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe\n\
To: sip:watson@example.com\n\
Call-ID: {name}.70710@saturn.example.com\n\
CSeq: 2 REGISTER\n\
{contact}\n\
l: 0\n\n"
        ));
        let sent = expect(name, &raw, Expect::Forward);
        assert!(text(&sent).contains(&format!("{contact}\r\n")), "{name}");
    }
}

/// §3.4.1 inv2543: RFC 2543 syntax (no branch cookie, no Max-Forwards, no Content-Length):
/// forwarded with Max-Forwards 70 and Content-Length added.
#[test]
fn inv2543_old_syntax() {
    let raw = crlf(
        "INVITE sip:UserB@example.com SIP/2.0\n\
Via: SIP/2.0/UDP iftgw.example.com\n\
From: <sip:+13035551111@ift.client.example.net;user=phone>\n\
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>\n\
To: sip:+16505552222@ss1.example.net;user=phone\n\
Call-ID: inv2543.1717@ift.client.example.com\n\
CSeq: 56 INVITE\n\
Content-Type: application/sdp\n\n\
v=0\n\
o=mhandley 29739 7272939 IN IP4 192.0.2.5\n\
s=-\n\
c=IN IP4 192.0.2.5\n\
t=0 0\n\
m=audio 49217 RTP/AVP 0\n",
    );
    let sent = expect("inv2543", &raw, Expect::Forward);
    assert!(text(&sent).contains("Max-Forwards: 70\r\n"));
    let msg = Message::scan(&sent.bytes, true).unwrap();
    assert!(
        msg.header(ferrovia::sip::HeaderName::ContentLength)
            .is_some()
    );
}

//! Contact rewriting end to end in memory: a Contact becomes a token on the way out and the
//! token is restored on the way back (RFC 3261 §8.1.1.8, §10.2.1), over the shared table.

use std::sync::Arc;

use crate::contact::{ContactTable, ContactTableConfig, TOKEN_LEN, TokenKey};
use crate::proxy::test_support::*;

fn table(capacity: usize) -> Arc<ContactTable> {
    table_from(capacity, 1000)
}

/// A table whose entry ids start at `first` (random per run in production).
fn table_from(capacity: usize, first: u64) -> Arc<ContactTable> {
    let mut config = ContactTableConfig::new(TokenKey::new([5; 16]), first);
    config.capacity = capacity;
    Arc::new(ContactTable::new(config, Instant::now()))
}

fn edge(table: &Arc<ContactTable>) -> Core {
    let tables = Tables {
        contact: Some(Arc::clone(table)),
        registrar: None,
        groups: None,
        dns: None,
    };
    core_with(
        |c| {
            c.next_hop = Some(NextHop::parse("sip:10.0.0.9:5060").unwrap());
            c.contact = Some(ContactRewrite {
                requests: true,
                responses: true,
            });
        },
        tables,
    )
}

fn register(contact: &str) -> String {
    request(
        "REGISTER sip:192.0.2.10",
        &format!("Contact: {contact}\r\n"),
    )
}

/// The token in `sip:<token>@192.0.2.10:5060` inside `text`.
fn token_in(text: &str) -> String {
    let at = text.find("@192.0.2.10:5060").expect("a rewritten contact");
    text[at - TOKEN_LEN..at].to_owned()
}

#[test]
fn register_contact_becomes_a_token_and_comes_back() {
    let t = table(100);
    let p = edge(&t);
    let raw = register("<sip:alice@10.9.9.9:5062;transport=udp>;expires=600;q=0.7");
    let r = run(&p, &raw, "203.0.113.5:40000");
    assert_eq!(forwarded_to(&r), "10.0.0.9:5060".parse().unwrap());
    let token = token_in(&r.text);
    assert!(
        r.text.contains(&format!(
            "\r\nContact: <sip:{token}@192.0.2.10:5060;transport=udp>;expires=600;q=0.7\r\n"
        )),
        "{}",
        r.text
    );
    assert!(!r.text.contains("10.9.9.9"), "the private address is gone");
    // A refresh (or a retransmission) gets the same token.
    let again = run(&p, &raw, "203.0.113.5:40000");
    assert_eq!(again.text, r.text);
    // The core calls the rewritten contact: it reaches the real source, original URI.
    let invite = request(&format!("INVITE sip:{token}@192.0.2.10:5060"), "")
        .replace("10.0.0.1:5060;branch", "10.0.0.9:5060;branch");
    let back = run(&p, &invite, "10.0.0.9:5060");
    assert_eq!(forwarded_to(&back), "203.0.113.5:40000".parse().unwrap());
    assert!(
        back.text
            .starts_with("INVITE sip:alice@10.9.9.9:5062;transport=udp SIP/2.0\r\n"),
        "{}",
        back.text
    );
    assert_eq!(t.counters().restores, 1);
}

#[test]
fn forged_and_unknown_tokens_get_404() {
    let t = table(100);
    let p = edge(&t);
    let r = run(&p, &register("<sip:alice@10.9.9.9>"), "203.0.113.5:40000");
    let token = token_in(&r.text);
    let mut forged = token.clone().into_bytes();
    forged[3] = if forged[3] == b'a' { b'b' } else { b'a' };
    let forged = String::from_utf8(forged).unwrap();
    // Sealed with the same key by another table (an earlier run): valid, but unknown here.
    let earlier = edge(&table_from(100, 9_000_000));
    let unknown = token_in(&run(&earlier, &register("<sip:x@10.9.9.7>"), "203.0.113.9:1").text);
    for user in [forged, unknown] {
        let invite = request(&format!("INVITE sip:{user}@192.0.2.10"), "");
        let r = run(&p, &invite, "10.0.0.9:5060");
        assert_eq!(replied(&r).0, 404, "{user}");
    }
    assert_eq!(t.counters().forged, 1, "{:?}", t.counters());
    assert_eq!(t.counters().misses, 1, "{:?}", t.counters());
    assert_eq!(t.counters().restores, 0);
    // A user part that is not a token at all routes as usual (to the next hop).
    let plain = request(
        &format!("INVITE sip:{}@192.0.2.10", "a".repeat(TOKEN_LEN)),
        "",
    );
    assert_eq!(
        forwarded_to(&run(&p, &plain, "10.0.0.1:5060")),
        "10.0.0.9:5060".parse().unwrap()
    );
}

#[test]
fn addr_spec_contacts_gain_brackets_and_wildcards_stay() {
    let t = table(100);
    let p = edge(&t);
    let r = run(
        &p,
        &register("sip:alice@10.9.9.9;expires=60"),
        "203.0.113.5:40000",
    );
    let token = token_in(&r.text);
    assert!(
        r.text.contains(&format!(
            "\r\nContact: <sip:{token}@192.0.2.10:5060>;expires=60\r\n"
        )),
        "{}",
        r.text
    );
    let star = register("*").replace("Max-Forwards: 70", "Expires: 0\r\nMax-Forwards: 70");
    let r = run(&p, &star, "203.0.113.5:40000");
    assert!(r.text.contains("\r\nContact: *\r\n"), "{}", r.text);
}

#[test]
fn response_contacts_are_rewritten_but_not_a_registrars() {
    let t = table(100);
    let p = edge(&t);
    let vias = "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdef\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;received=203.0.113.5;rport=40000\r\nContact: <sip:bob@10.0.0.7>\r\n";
    let ok = response("200 OK", vias);
    let r = run(&p, &ok, "10.0.0.7:5060");
    let token = token_in(&r.text);
    assert!(
        r.text
            .contains(&format!("Contact: <sip:{token}@192.0.2.10:5060>")),
        "{}",
        r.text
    );
    let to_register = ok.replace("CSeq: 314159 INVITE", "CSeq: 314159 REGISTER");
    let r = run(&p, &to_register, "10.0.0.7:5060");
    assert!(r.text.contains("Contact: <sip:bob@10.0.0.7>"), "{}", r.text);
    let trying = response("100 Trying", vias);
    assert!(
        run(&p, &trying, "10.0.0.7:5060")
            .text
            .contains("<sip:bob@10.0.0.7>")
    );
}

#[test]
fn our_own_tokens_are_not_rewritten_again() {
    let t = table(100);
    let p = edge(&t);
    let r = run(&p, &register("<sip:alice@10.9.9.9>"), "203.0.113.5:40000");
    let token = token_in(&r.text);
    let again = register(&format!("<sip:{token}@192.0.2.10:5060>"));
    let r2 = run(&p, &again, "10.0.0.9:5060");
    assert!(
        r2.text.contains(&format!("<sip:{token}@192.0.2.10:5060>")),
        "{}",
        r2.text
    );
    assert_eq!(t.len(), 1);
}

#[test]
fn a_full_table_refuses_requests_with_503() {
    let t = table(1);
    let p = edge(&t);
    forwarded_to(&run(
        &p,
        &register("<sip:alice@10.9.9.9>"),
        "203.0.113.5:40000",
    ));
    let r = run(&p, &register("<sip:carol@10.9.9.8>"), "203.0.113.6:40000");
    assert_eq!(replied(&r).0, 503);
    assert!(r.text.starts_with("SIP/2.0 503 Contact Table Full\r\n"));
    assert_eq!(t.counters().refused_full, 1);
}

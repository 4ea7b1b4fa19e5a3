//! The register floor's answers: a canned digest challenge for a REGISTER without credentials
//! and a canned 200 OK for one with them — what any registrar must at least put on the wire
//! for sipp's `tests/sipp/register_auth.xml`, with no table, no nonce MAC and no digest check.
//!
//! One pass over the header lines finds what the answers copy: every Via, From, To (with a
//! tag added when it has none), Call-ID and CSeq (RFC 3261 §8.2.6.2); nothing else is checked. The 401 carries `WWW-Authenticate: Digest` with a fixed nonce and
//! `qop="auth"` (RFC 3261 §22.2, RFC 2617 §3.2.1); the 200 lists the request's Contact with
//! `;expires=` the request's Expires (RFC 3261 §10.3 step 8). Written into a buffer the caller
//! owns; nothing is allocated.

use super::message::Malformed;
use super::reply::{Writer, has_tag};

/// The realm and nonce of every challenge the floor sends.
const CHALLENGE: &[u8] = b"WWW-Authenticate: Digest realm=\"edge.example\", \
    nonce=\"0123456789abcdef0123456789abcdef\", qop=\"auth\", algorithm=MD5\r\n";
/// The To tag of every answer.
const TO_TAG: &[u8] = b"ferrovia-floor";
/// Via fields copied into an answer; more are a malformed request here.
const MAX_VIAS: usize = 8;

/// What the floor does with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorAnswer {
    /// A 401 of this many bytes is in the output buffer.
    Challenge(usize),
    /// A 200 OK of this many bytes is in the output buffer.
    Registered(usize),
    /// Not a REGISTER (or a response): no answer.
    Ignored,
}

/// The fields the answers need, found in one pass over the header lines: each the whole
/// field as written (continuation lines included, final line break not), or for Contact and
/// Expires the value alone.
#[derive(Default)]
struct Fields<'a> {
    vias: [&'a [u8]; MAX_VIAS],
    via_count: usize,
    from: Option<&'a [u8]>,
    to: Option<(&'a [u8], &'a [u8])>,
    call_id: Option<&'a [u8]>,
    cseq: Option<&'a [u8]>,
    contact: Option<&'a [u8]>,
    expires: Option<&'a [u8]>,
    authorization: bool,
}

/// Builds the floor's answer to `datagram` into `out`.
pub fn register_answer(datagram: &[u8], out: &mut [u8]) -> Result<FloorAnswer, Malformed> {
    if !datagram.starts_with(b"REGISTER ") {
        return Ok(FloorAnswer::Ignored);
    }
    let f = fields(datagram)?;
    let mut w = Writer { out, len: 0 };
    w.put(match f.authorization {
        false => b"SIP/2.0 401 Unauthorized\r\n",
        true => b"SIP/2.0 200 OK\r\n",
    })?;
    copy_dialog_headers(&f, &mut w)?;
    if !f.authorization {
        w.put(CHALLENGE)?;
        w.put(b"Content-Length: 0\r\n\r\n")?;
        return Ok(FloorAnswer::Challenge(w.len));
    }
    w.put(b"Contact: ")?;
    w.put(f.contact.ok_or(Malformed::Missing("Contact"))?)?;
    w.put(b";expires=")?;
    w.line(f.expires.unwrap_or(b"3600"))?;
    w.put(b"Content-Length: 0\r\n\r\n")?;
    Ok(FloorAnswer::Registered(w.len))
}

/// One pass over the header section (after the request line, up to the empty line).
fn fields(datagram: &[u8]) -> Result<Fields<'_>, Malformed> {
    let first = memchr::memchr(b'\n', datagram);
    let mut at = first.ok_or(Malformed::NoStartLine)? + 1;
    let mut f = Fields::default();
    loop {
        let (field, next) = field_at(datagram, at).ok_or(Malformed::NoEndOfHeaders)?;
        if field.is_empty() {
            return Ok(f);
        }
        note(&mut f, field)?;
        at = next;
    }
}

/// The field starting at `at` (its first line plus continuation lines, RFC 3261 §7.3.1,
/// without the final line break) and where the next one starts; `None` without a line break.
fn field_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let mut end = at;
    loop {
        end += memchr::memchr(b'\n', bytes.get(end..)?)? + 1;
        let continues = matches!(bytes.get(end), Some(b' ' | b'\t'));
        if end - at <= 2 || !continues {
            let field = &bytes[at..end - 1];
            return Some((field.strip_suffix(b"\r").unwrap_or(field), end));
        }
    }
}

fn note<'a>(f: &mut Fields<'a>, field: &'a [u8]) -> Result<(), Malformed> {
    let colon = memchr::memchr(b':', field);
    let colon = colon.ok_or(Malformed::BadHeaderLine)?;
    let (name, value) = (field[..colon].trim_ascii(), field[colon + 1..].trim_ascii());
    let is = |long: &[u8], compact: &[u8]| {
        name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(compact)
    };
    if is(b"Via", b"v") {
        let slot = f
            .vias
            .get_mut(f.via_count)
            .ok_or(Malformed::BadHeaderLine)?;
        *slot = field;
        f.via_count += 1;
    } else if is(b"From", b"f") {
        f.from.get_or_insert(field);
    } else if is(b"To", b"t") {
        f.to.get_or_insert((field, value));
    } else if is(b"Call-ID", b"i") {
        f.call_id.get_or_insert(field);
    } else if is(b"CSeq", b"CSeq") {
        f.cseq.get_or_insert(field);
    } else if is(b"Contact", b"m") {
        f.contact.get_or_insert(value);
    } else if is(b"Expires", b"Expires") {
        f.expires.get_or_insert(value);
    } else if is(b"Authorization", b"Authorization") {
        f.authorization = true;
    }
    Ok(())
}

/// Every Via in order, From, To (tagged), Call-ID and CSeq.
fn copy_dialog_headers(f: &Fields<'_>, w: &mut Writer<'_>) -> Result<(), Malformed> {
    if f.via_count == 0 {
        return Err(Malformed::Missing("Via"));
    }
    for via in &f.vias[..f.via_count] {
        w.line(via)?;
    }
    w.line(f.from.ok_or(Malformed::Missing("From"))?)?;
    let (to, to_value) = f.to.ok_or(Malformed::Missing("To"))?;
    w.put(to)?;
    if !has_tag(to_value) {
        w.put(b";tag=")?;
        w.put(TO_TAG)?;
    }
    w.put(b"\r\n")?;
    w.line(f.call_id.ok_or(Malformed::Missing("Call-ID"))?)?;
    w.line(f.cseq.ok_or(Malformed::Missing("CSeq"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &[u8] = b"REGISTER sip:edge.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-1\r\n\
        From: <sip:alice@edge.example>;tag=1reg1\r\n\
        To: <sip:alice@edge.example>\r\n\
        Call-ID: 1-2@127.0.0.1\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:alice@127.0.0.1:40000;transport=UDP>\r\n\
        Expires: 600\r\n\
        Max-Forwards: 70\r\n\
        Content-Length: 0\r\n\r\n";

    fn text(answer: FloorAnswer, out: &[u8]) -> String {
        match answer {
            FloorAnswer::Challenge(n) | FloorAnswer::Registered(n) => {
                String::from_utf8(out[..n].to_vec()).unwrap()
            }
            FloorAnswer::Ignored => panic!("no answer"),
        }
    }

    #[test]
    fn a_register_without_credentials_gets_the_canned_401() {
        let mut out = [0u8; 1024];
        let answer = register_answer(REGISTER, &mut out).unwrap();
        assert!(matches!(answer, FloorAnswer::Challenge(_)));
        let want = "SIP/2.0 401 Unauthorized\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-1\r\n\
            From: <sip:alice@edge.example>;tag=1reg1\r\n\
            To: <sip:alice@edge.example>;tag=ferrovia-floor\r\n\
            Call-ID: 1-2@127.0.0.1\r\n\
            CSeq: 1 REGISTER\r\n\
            WWW-Authenticate: Digest realm=\"edge.example\", \
            nonce=\"0123456789abcdef0123456789abcdef\", qop=\"auth\", algorithm=MD5\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(text(answer, &out), want);
    }

    #[test]
    fn a_register_with_credentials_gets_a_200_listing_its_contact_and_expiry() {
        let with = String::from_utf8(REGISTER.to_vec()).unwrap().replace(
            "Expires: 600\r\n",
            "Authorization: Digest username=\"alice\"\r\nExpires: 600\r\n",
        );
        let mut out = [0u8; 1024];
        let answer = register_answer(with.as_bytes(), &mut out).unwrap();
        assert!(matches!(answer, FloorAnswer::Registered(_)));
        let got = text(answer, &out);
        assert!(got.starts_with("SIP/2.0 200 OK\r\n"), "{got}");
        assert!(
            got.contains("\r\nContact: <sip:alice@127.0.0.1:40000;transport=UDP>;expires=600\r\n"),
            "{got}"
        );
        assert!(got.ends_with("CSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:40000;transport=UDP>;expires=600\r\nContent-Length: 0\r\n\r\n"), "{got}");
    }

    #[test]
    fn other_requests_and_responses_are_ignored_and_a_200_needs_a_contact() {
        let mut out = [0u8; 1024];
        let options = b"OPTIONS sip:a SIP/2.0\r\nVia: v\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(register_answer(options, &mut out), Ok(FloorAnswer::Ignored));
        let ok = b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n";
        assert_eq!(register_answer(ok, &mut out), Ok(FloorAnswer::Ignored));
        let no_contact = b"REGISTER sip:a SIP/2.0\r\nVia: v\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\nAuthorization: Digest x\r\n\r\n";
        assert_eq!(
            register_answer(no_contact, &mut out),
            Err(Malformed::Missing("Contact"))
        );
    }

    #[test]
    fn compact_folded_and_several_vias_are_copied_in_order() {
        let request =
            b"REGISTER sip:edge.example SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK-1,\r\n \
            SIP/2.0/UDP b;branch=z9hG4bK-2\r\nf: <sip:x@e>;tag=1\r\nt: <sip:x@e>;tag=9\r\n\
            i: c\r\nCSeq: 7 REGISTER\r\nVia: SIP/2.0/UDP c;branch=z9hG4bK-3\r\n\
            m: <sip:x@h>\r\nAuthorization: Digest x\r\n\r\n";
        let mut out = [0u8; 1024];
        let answer = register_answer(request, &mut out).unwrap();
        let want = "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a;branch=z9hG4bK-1,\r\n \
            SIP/2.0/UDP b;branch=z9hG4bK-2\r\nVia: SIP/2.0/UDP c;branch=z9hG4bK-3\r\n\
            f: <sip:x@e>;tag=1\r\nt: <sip:x@e>;tag=9\r\ni: c\r\nCSeq: 7 REGISTER\r\n\
            Contact: <sip:x@h>;expires=3600\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(text(answer, &out), want);
    }

    #[test]
    fn never_panics_on_any_prefix_or_corruption_or_a_small_buffer() {
        let mut out = [0u8; 2048];
        for end in 0..=REGISTER.len() {
            let _ = register_answer(&REGISTER[..end], &mut out);
        }
        let mut bytes = REGISTER.to_vec();
        for i in 0..bytes.len() {
            let old = bytes[i];
            for b in [0u8, b'\n', b':', b' ', 0xff] {
                bytes[i] = b;
                let _ = register_answer(&bytes, &mut out);
            }
            bytes[i] = old;
        }
        let mut small = [0u8; 64];
        assert_eq!(
            register_answer(REGISTER, &mut small),
            Err(Malformed::ReplyTooLarge)
        );
    }
}

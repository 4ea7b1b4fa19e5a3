//! The reflector's answer: a stateless 200 OK for any request but ACK, built per RFC 3261 §8.2.6.
//!
//! The reply copies every Via field in order, From, To (with a tag added when the request's To
//! has none), Call-ID and CSeq, and ends with `Content-Length: 0`. It is written into a buffer
//! the caller owns; nothing is allocated.

use super::message::{Malformed, Message, StartLine};

/// What the reflector does with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A 200 OK of this many bytes is in the output buffer.
    Ok(usize),
    /// An ACK: never answered (RFC 3261 §17.1.1.3).
    Ack,
    /// A response: nothing to answer.
    Response,
}

/// Builds the answer to `datagram` into `out`. `to_tag` is added to a To without a tag.
pub fn answer(datagram: &[u8], to_tag: &[u8], out: &mut [u8]) -> Result<Answer, Malformed> {
    let message = Message::parse(datagram)?;
    match message.start {
        StartLine::Response { .. } => Ok(Answer::Response),
        StartLine::Request { method } if method == b"ACK" => Ok(Answer::Ack),
        StartLine::Request { .. } => write_ok(&message, to_tag, out).map(Answer::Ok),
    }
}

fn write_ok(request: &Message<'_>, to_tag: &[u8], out: &mut [u8]) -> Result<usize, Malformed> {
    let required = |name: &'static str, compact| {
        request
            .header(name.as_bytes(), compact)
            .ok_or(Malformed::Missing(name))
    };
    let (from, to) = (required("From", Some(b'f'))?, required("To", Some(b't'))?);
    let (call_id, cseq) = (required("Call-ID", Some(b'i'))?, required("CSeq", None)?);
    let mut w = Writer { out, len: 0 };
    w.put(b"SIP/2.0 200 OK\r\n")?;
    let mut vias = 0;
    for via in request.headers().filter(|h| h.is(b"Via", Some(b'v'))) {
        w.line(via.raw)?;
        vias += 1;
    }
    if vias == 0 {
        return Err(Malformed::Missing("Via"));
    }
    w.line(from.raw)?;
    w.put(to.raw)?;
    if !has_tag(to.value) {
        w.put(b";tag=")?;
        w.put(to_tag)?;
    }
    w.put(b"\r\n")?;
    w.line(call_id.raw)?;
    w.line(cseq.raw)?;
    w.put(b"Content-Length: 0\r\n\r\n")?;
    Ok(w.len)
}

/// Whether a From/To value carries a `tag` parameter (after the URI, not inside `<...>`).
pub(super) fn has_tag(value: &[u8]) -> bool {
    let params = match value.iter().rposition(|&b| b == b'>') {
        Some(close) => &value[close + 1..],
        None => value,
    };
    params.split(|&b| b == b';').skip(1).any(|param| {
        let name = param.split(|&b| b == b'=').next().unwrap_or(param);
        name.trim_ascii().eq_ignore_ascii_case(b"tag")
    })
}

pub(super) struct Writer<'a> {
    pub(super) out: &'a mut [u8],
    pub(super) len: usize,
}

impl Writer<'_> {
    pub(super) fn put(&mut self, bytes: &[u8]) -> Result<(), Malformed> {
        let end = self.len + bytes.len();
        let dest = self.out.get_mut(self.len..end);
        dest.ok_or(Malformed::ReplyTooLarge)?.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    pub(super) fn line(&mut self, bytes: &[u8]) -> Result<(), Malformed> {
        self.put(bytes)?;
        self.put(b"\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:uas@127.0.0.1:5080 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-proxy\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-1;rport=40000\r\n\
        Max-Forwards: 69\r\n\
        Route: <sip:127.0.0.1:5080;lr>\r\n\
        From: \"lg\" <sip:lg@127.0.0.1:40000>;tag=abc\r\n\
        To: <sip:uas@127.0.0.1:5080>\r\n\
        Call-ID: 0000000042.1a2b3c4d@ferrovia-loadgen\r\n\
        CSeq: 1 INVITE\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\n";

    fn reply(request: &[u8]) -> Result<String, Malformed> {
        let mut out = [0u8; 1024];
        match answer(request, b"r1", &mut out)? {
            Answer::Ok(len) => Ok(String::from_utf8(out[..len].to_vec()).unwrap()),
            other => panic!("no reply: {other:?}"),
        }
    }

    #[test]
    fn the_200_copies_every_via_in_order_and_the_dialog_headers() {
        let want = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-proxy\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-1;rport=40000\r\n\
            From: \"lg\" <sip:lg@127.0.0.1:40000>;tag=abc\r\n\
            To: <sip:uas@127.0.0.1:5080>;tag=r1\r\n\
            Call-ID: 0000000042.1a2b3c4d@ferrovia-loadgen\r\n\
            CSeq: 1 INVITE\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(reply(INVITE).unwrap(), want);
    }

    #[test]
    fn compact_and_folded_vias_are_copied_as_written() {
        let request = b"OPTIONS sip:a SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK-1,\r\n \
            SIP/2.0/UDP b;branch=z9hG4bK-2\r\nf: <sip:x>;tag=1\r\nt: sip:y\r\ni: c\r\n\
            CSeq: 7 OPTIONS\r\nVia: SIP/2.0/UDP c;branch=z9hG4bK-3\r\n\r\n";
        let got = reply(request).unwrap();
        let via_a = got.find("branch=z9hG4bK-1").unwrap();
        let via_b = got.find("branch=z9hG4bK-2").unwrap();
        let via_c = got.find("branch=z9hG4bK-3").unwrap();
        assert!(via_a < via_b && via_b < via_c, "{got}");
        assert!(got.contains("t: sip:y;tag=r1\r\n"), "{got}");
        assert!(got.contains("i: c\r\nCSeq: 7 OPTIONS\r\n"), "{got}");
    }

    #[test]
    fn an_existing_to_tag_is_kept() {
        let request = b"BYE sip:a SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK-1\r\n\
            From: <sip:x>;tag=1\r\nTo: <sip:y;tag=uri-param>;TAG=9\r\nCall-ID: c\r\n\
            CSeq: 2 BYE\r\n\r\n";
        let got = reply(request).unwrap();
        assert!(got.contains("To: <sip:y;tag=uri-param>;TAG=9\r\n"), "{got}");
    }

    #[test]
    fn a_uri_parameter_named_tag_is_not_a_to_tag() {
        assert!(!has_tag(b"<sip:y;tag=1>"));
        assert!(has_tag(b"<sip:y>;tag=1"));
        assert!(has_tag(b"sip:y;tag=1"));
        assert!(has_tag(b"<sip:y> ; tag = 1"));
        assert!(!has_tag(b"<sip:y>;tagx=1"));
    }

    #[test]
    fn acks_and_responses_get_no_answer() {
        let mut out = [0u8; 256];
        let ack = b"ACK sip:a SIP/2.0\r\nVia: x\r\n\r\n";
        assert_eq!(answer(ack, b"t", &mut out), Ok(Answer::Ack));
        let ok = b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n";
        assert_eq!(answer(ok, b"t", &mut out), Ok(Answer::Response));
    }

    #[test]
    fn a_request_missing_a_header_to_copy_is_malformed() {
        let no_via =
            b"OPTIONS sip:a SIP/2.0\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(reply(no_via), Err(Malformed::Missing("Via")));
        let no_cseq = b"OPTIONS sip:a SIP/2.0\r\nVia: v\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\n\r\n";
        assert_eq!(reply(no_cseq), Err(Malformed::Missing("CSeq")));
    }

    #[test]
    fn a_reply_too_large_for_the_buffer_is_an_error_not_a_panic() {
        let mut out = [0u8; 64];
        assert_eq!(
            answer(INVITE, b"t", &mut out),
            Err(Malformed::ReplyTooLarge)
        );
    }

    #[test]
    fn never_panics_on_any_prefix_or_corruption_of_a_request() {
        let mut out = [0u8; 2048];
        for end in 0..=INVITE.len() {
            let _ = answer(&INVITE[..end], b"t", &mut out);
        }
        let mut bytes = INVITE.to_vec();
        for i in 0..bytes.len() {
            let old = bytes[i];
            for b in [0u8, b'\n', b':', b' ', 0xff] {
                bytes[i] = b;
                let _ = answer(&bytes, b"t", &mut out);
            }
            bytes[i] = old;
        }
    }
}

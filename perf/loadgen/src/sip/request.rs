//! The load generator's requests: one template per flow (its Via names the flow's own socket),
//! stamped with a sequence number in place, so sending a request copies nothing.
//!
//! Every request carries its sequence number and the run's id twice: in the Via branch and in the
//! Call-ID, which every forwarder passes through unchanged and the reflector copies into its 200.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// Digits of a sequence number as written in a request (zero-padded, fixed width).
pub const SEQ_DIGITS: usize = 10;
/// The largest sequence number a request can carry.
pub const MAX_SEQ: u64 = 9_999_999_999;

const CALL_ID_HOST: &str = "ferrovia-loadgen";

/// Tells one run's (or one search step's) answers from a previous one's late answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RunId(pub u32);

/// Which request to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Options,
    /// With an SDP offer as body.
    Invite,
}

/// What every request of a run looks like.
#[derive(Clone, Copy, Debug)]
pub struct RequestSpec {
    pub method: Method,
    /// Named in the Request-URI and To (and the Route, when `route` is set).
    pub reflector: SocketAddr,
    /// Add `Route: <sip:REFLECTOR;lr>` so a loose-routing proxy forwards by Route.
    pub route: bool,
    /// Pad the request to at least this many bytes (SDP attribute or `X-Pad` header).
    pub size: usize,
    pub run: RunId,
}

/// A request for one flow, with the offsets where the sequence number goes.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    bytes: Vec<u8>,
    seq_at: [usize; 2],
}

const PLACEHOLDER: &str = "0000000000";

impl RequestTemplate {
    /// The request that the flow whose socket is bound to `local` sends.
    pub fn new(spec: &RequestSpec, local: SocketAddr) -> RequestTemplate {
        let mut pad = 0;
        let mut rendered = render(spec, local, pad);
        // Padding changes Content-Length's digits at most once or twice: converge.
        for _ in 0..3 {
            if rendered.text.len() >= spec.size {
                break;
            }
            pad += spec.size - rendered.text.len();
            rendered = render(spec, local, pad);
        }
        RequestTemplate {
            bytes: rendered.text.into_bytes(),
            seq_at: rendered.seq_at,
        }
    }

    /// The request with sequence number 0; copy it into a send slot once, then [`stamp`] it.
    ///
    /// [`stamp`]: RequestTemplate::stamp
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Writes `seq` (at most [`MAX_SEQ`]) into a copy of [`RequestTemplate::bytes`].
    pub fn stamp(&self, request: &mut [u8], seq: u64) {
        let digits = seq_digits(seq);
        for at in self.seq_at {
            if let Some(field) = request.get_mut(at..at + SEQ_DIGITS) {
                field.copy_from_slice(&digits);
            }
        }
    }
}

fn seq_digits(seq: u64) -> [u8; SEQ_DIGITS] {
    let mut digits = [b'0'; SEQ_DIGITS];
    let mut n = seq.min(MAX_SEQ);
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    digits
}

struct Rendered {
    text: String,
    /// Where the two sequence-number placeholders start.
    seq_at: [usize; 2],
}

fn render(spec: &RequestSpec, local: SocketAddr, pad: usize) -> Rendered {
    let body = match spec.method {
        Method::Invite => sdp_offer(local, pad),
        Method::Options => String::new(),
    };
    let mut m = String::with_capacity(1024);
    let seq_at = transaction_headers(&mut m, spec, local);
    // Writing to a String cannot fail: each `let _` discards an always-Ok fmt::Result.
    let _ = write!(m, "Contact: <sip:loadgen@{local}>\r\n");
    m.push_str("User-Agent: ferrovia-loadgen\r\n");
    if spec.method == Method::Options && pad > 0 {
        let _ = write!(m, "X-Pad: {}\r\n", "x".repeat(pad));
    }
    if spec.method == Method::Invite {
        m.push_str("Content-Type: application/sdp\r\n");
    }
    let _ = write!(m, "Content-Length: {}\r\n\r\n{body}", body.len());
    Rendered { text: m, seq_at }
}

/// The request line and the headers that identify the transaction (RFC 3261 §8.1.1), returning
/// where the two sequence-number placeholders (Via branch, Call-ID) start.
fn transaction_headers(m: &mut String, spec: &RequestSpec, local: SocketAddr) -> [usize; 2] {
    let (method, reflector, run) = (method_name(spec.method), spec.reflector, spec.run.0);
    // Writing to a String cannot fail: each `let _` discards an always-Ok fmt::Result.
    let _ = write!(m, "{method} sip:reflector@{reflector} SIP/2.0\r\n");
    let _ = write!(m, "Via: SIP/2.0/UDP {local};branch=z9hG4bK-{run:08x}-");
    let branch_seq_at = m.len();
    let _ = write!(m, "{PLACEHOLDER};rport\r\n");
    m.push_str("Max-Forwards: 70\r\n");
    if spec.route {
        let _ = write!(m, "Route: <sip:{reflector};lr>\r\n");
    }
    let _ = write!(
        m,
        "From: \"ferrovia loadgen\" <sip:loadgen@{local}>;tag={run:08x}\r\n"
    );
    let _ = write!(m, "To: <sip:reflector@{reflector}>\r\n");
    m.push_str("Call-ID: ");
    let call_id_seq_at = m.len();
    let _ = write!(m, "{PLACEHOLDER}.{run:08x}@{CALL_ID_HOST}\r\n");
    let _ = write!(m, "CSeq: 1 {method}\r\n");
    [branch_seq_at, call_id_seq_at]
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Options => "OPTIONS",
        Method::Invite => "INVITE",
    }
}

/// An audio offer as a softswitch would send it, plus `pad` bytes of a private attribute.
fn sdp_offer(local: SocketAddr, pad: usize) -> String {
    let (family, ip) = match local {
        SocketAddr::V4(a) => ("IP4", a.ip().to_string()),
        SocketAddr::V6(a) => ("IP6", a.ip().to_string()),
    };
    let mut s = String::with_capacity(512 + pad);
    let _ = write!(
        s,
        "v=0\r\no=loadgen 53655765 2353687637 IN {family} {ip}\r\ns=-\r\n"
    );
    let _ = write!(s, "c=IN {family} {ip}\r\nt=0 0\r\n");
    s.push_str("m=audio 16384 RTP/AVP 0 8 18 101\r\n");
    s.push_str("a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n");
    s.push_str("a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n");
    s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    if pad > 0 {
        let filler = pad.saturating_sub("a=x-pad:\r\n".len());
        let _ = write!(s, "a=x-pad:{}\r\n", "x".repeat(filler));
    }
    s
}

/// The sequence number and run of a request or its answer, read back from the Call-ID value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRef {
    pub seq: u64,
    pub run: RunId,
}

impl CallRef {
    /// Reads `SEQ.RUN@ferrovia-loadgen`; `None` for any other Call-ID.
    pub fn parse(call_id: &[u8]) -> Option<CallRef> {
        let (seq, rest) = call_id.split_at_checked(SEQ_DIGITS)?;
        let run = rest
            .strip_prefix(b".")?
            .strip_suffix(CALL_ID_HOST.as_bytes())?;
        let run = run.strip_suffix(b"@")?;
        if !seq.iter().all(u8::is_ascii_digit) || run.len() != 8 {
            return None;
        }
        let seq = seq.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'));
        let run = std::str::from_utf8(run).ok()?;
        let run = u32::from_str_radix(run, 16).ok()?;
        Some(CallRef {
            seq,
            run: RunId(run),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Message, StartLine};

    fn spec(method: Method, size: usize, route: bool) -> RequestSpec {
        RequestSpec {
            method,
            reflector: "127.0.0.1:5080".parse().unwrap(),
            route,
            size,
            run: RunId(0x1a2b_3c4d),
        }
    }

    fn local() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    fn stamped(template: &RequestTemplate, seq: u64) -> Vec<u8> {
        let mut bytes = template.bytes().to_vec();
        template.stamp(&mut bytes, seq);
        bytes
    }

    #[test]
    fn an_invite_is_padded_to_the_asked_size_with_a_true_content_length() {
        let natural = RequestTemplate::new(&spec(Method::Invite, 0, true), local());
        let natural = natural.bytes().len();
        for size in [0, 700, 900, 1000, 1400] {
            let t = RequestTemplate::new(&spec(Method::Invite, size, true), local());
            let bytes = t.bytes();
            assert!(bytes.len() >= size);
            assert!(
                bytes.len() <= size.max(natural) + 2,
                "{} for {size}",
                bytes.len()
            );
            let text = std::str::from_utf8(bytes).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.contains(&format!("Content-Length: {}", body.len())));
            assert!(body.starts_with("v=0\r\n"));
        }
    }

    #[test]
    fn the_sequence_number_is_stamped_into_branch_and_call_id() {
        let t = RequestTemplate::new(&spec(Method::Options, 0, true), local());
        let bytes = stamped(&t, 4_294_967_296);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("branch=z9hG4bK-1a2b3c4d-4294967296;rport\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Call-ID: 4294967296.1a2b3c4d@ferrovia-loadgen\r\n"),
            "{text}"
        );
        assert!(text.starts_with("OPTIONS sip:reflector@127.0.0.1:5080 SIP/2.0\r\n"));
        assert!(text.contains("Route: <sip:127.0.0.1:5080;lr>\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:40000;"));

        let message = Message::parse(&bytes).unwrap();
        assert_eq!(message.start, StartLine::Request { method: b"OPTIONS" });
        let call_id = message.header(b"Call-ID", Some(b'i')).unwrap().value;
        let call = CallRef::parse(call_id).unwrap();
        assert_eq!(
            call,
            CallRef {
                seq: 4_294_967_296,
                run: RunId(0x1a2b_3c4d)
            }
        );
    }

    #[test]
    fn restamping_replaces_the_previous_number() {
        let t = RequestTemplate::new(&spec(Method::Invite, 900, false), local());
        let mut bytes = stamped(&t, 99_999);
        t.stamp(&mut bytes, 7);
        assert_eq!(bytes, stamped(&t, 7));
        assert!(!String::from_utf8(bytes).unwrap().contains("Route:"));
    }

    #[test]
    fn ipv6_flows_write_bracketed_hosts() {
        let mut s = spec(Method::Invite, 0, true);
        s.reflector = "[::1]:5080".parse().unwrap();
        let t = RequestTemplate::new(&s, "[::1]:40000".parse().unwrap());
        let text = std::str::from_utf8(t.bytes()).unwrap();
        assert!(text.contains("Route: <sip:[::1]:5080;lr>"));
        assert!(text.contains("Via: SIP/2.0/UDP [::1]:40000;"));
        assert!(text.contains("c=IN IP6 ::1\r\n"));
    }

    #[test]
    fn foreign_call_ids_are_not_ours() {
        for bad in [
            &b""[..],
            b"abc@host",
            b"000000000x.1a2b3c4d@ferrovia-loadgen",
            b"0000000001.1a2b3c4d@elsewhere",
            b"0000000001.1a2b3c@ferrovia-loadgen",
            b"0000000001-1a2b3c4d@ferrovia-loadgen",
            b"0000000001.zzzzzzzz@ferrovia-loadgen",
        ] {
            assert_eq!(CallRef::parse(bad), None, "{bad:?}");
        }
    }
}

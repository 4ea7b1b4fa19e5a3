//! Just enough SIP to drive the proxy from a test: build requests, answer them the way a
//! user agent would (copying the Via stack), and read header values.

use std::net::SocketAddr;

/// An INVITE from the client at `from` to `sip:alice@{to}`, with a loose Route to `to`.
pub fn invite(from: SocketAddr, to: SocketAddr, call: &str) -> String {
    invite_over("UDP", from, to, "udp", call)
}

/// An INVITE sent over `via` (`UDP`, `TCP`) from `from`, routed to `to` over `next`
/// (`udp`, `tcp`: the Route's transport parameter).
pub fn invite_over(via: &str, from: SocketAddr, to: SocketAddr, next: &str, call: &str) -> String {
    format!(
        "INVITE sip:alice@{to} SIP/2.0\r\n\
         Via: SIP/2.0/{via} {from};branch=z9hG4bK-{call};rport\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:{to};transport={next};lr>\r\n\
         From: \"Bob\" <sip:bob@{from}>;tag=b-{call}\r\n\
         To: <sip:alice@{to}>\r\n\
         Call-ID: {call}@ferrovia.test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:bob@{from}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// `message` with the header `line` (`Name: value`) added before its Content-Length.
pub fn with_header(message: &str, line: &str) -> String {
    message.replacen("Content-Length", &format!("{line}\r\nContent-Length"), 1)
}

/// The response a UAS sends to `request`: its Via stack, From, To (tagged), Call-ID, CSeq.
pub fn response(request: &str, status: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for line in header_lines(request) {
        let name = line.split(':').next().unwrap_or("").trim();
        if ["via", "v", "record-route"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    for name in ["From", "Call-ID", "CSeq"] {
        if let Some(value) = header(request, name) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let to = header(request, "To").unwrap_or_default();
    out.push_str(&format!("To: {to};tag=alice\r\nContent-Length: 0\r\n\r\n"));
    out
}

/// The header section's lines, without the start line.
pub fn header_lines(message: &str) -> impl Iterator<Item = &str> {
    let head = message.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n").skip(1)
}

/// The first value of header `name` (case-insensitive), trimmed.
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    header_lines(message).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Every value of header `name` (case-insensitive), one per line, trimmed.
pub fn headers<'a>(message: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> {
    header_lines(message).filter_map(move |line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// How many Via header lines the message has (one value per line in these tests).
pub fn via_count(message: &str) -> usize {
    header_lines(message)
        .filter(|l| {
            let name = l.split(':').next().unwrap_or("").trim();
            name.eq_ignore_ascii_case("via") || name.eq_ignore_ascii_case("v")
        })
        .count()
}

/// The sent-by `host:port` of the top Via, as a socket address.
pub fn top_via_sent_by(message: &str) -> Option<SocketAddr> {
    let value = header(message, "Via")?;
    let sent_by = value.split_whitespace().nth(1)?;
    sent_by.split(';').next()?.parse().ok()
}

/// The status code of a response.
pub fn status(message: &str) -> Option<u16> {
    message.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

//! An independent strict SIP reader for the differential property (issue 11): written from
//! RFC 3261 §7 without ferrovia's code, as a careful downstream parser would read what
//! ferrovia forwards. It accepts only CRLF line ends in the head (a lone CR or LF anywhere
//! there is an error), exactly one Content-Length (`Content-Length` or `l`, digits only, on
//! one line) that frames the body, and no duplicate singleton header. Folded lines
//! (§7.3.1) belong to the header above, except that Content-Length may not be folded.
//!
//! Shared by `tests/core_differential.rs`, `tests/core_regressions.rs` and the fuzz target
//! `fuzz/fuzz_targets/differential.rs` (included by path).

#![allow(dead_code)]

/// What the strict reader saw in one message.
#[derive(Debug, PartialEq, Eq)]
pub struct Strict<'a> {
    /// Header fields (a folded field counts once).
    pub headers: usize,
    pub content_length: usize,
    pub body: &'a [u8],
    /// Bytes of the message: head and body.
    pub len: usize,
}

const SINGLETONS: &[&[&str]] = &[
    &["content-length", "l"],
    &["call-id", "i"],
    &["cseq"],
    &["from", "f"],
    &["to", "t"],
    &["max-forwards"],
    &["content-type", "c"],
];

/// Reads the message at the start of `buf`. With `stream`, the message ends where its
/// Content-Length says (more bytes may follow); without, the body must fill the datagram.
pub fn read(buf: &[u8], stream: bool) -> Result<Strict<'_>, String> {
    let head_end = find(buf, b"\r\n\r\n").ok_or("no CRLF CRLF")? + 4;
    let head = &buf[..head_end - 2];
    if head.iter().enumerate().any(|(i, &b)| bare(head, i, b)) {
        return Err("a CR or LF outside CRLF in the head".into());
    }
    // Every LF is preceded by CR (checked above); the last line's CRLF is cut off here.
    let mut lines = head[..head.len() - 2]
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    start_line(lines.next().ok_or("no start line")?)?;
    let mut seen = [0usize; SINGLETONS.len()];
    let mut headers = 0;
    let mut length = None;
    let mut last_was_length = false;
    for line in lines {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if headers == 0 || last_was_length {
                return Err("a folded first line or Content-Length".into());
            }
            continue;
        }
        let colon = line.iter().position(|&b| b == b':').ok_or("no colon")?;
        let name = trim(&line[..colon]).to_ascii_lowercase();
        if name.is_empty() || !name.iter().all(|&b| token(b)) {
            return Err(format!("bad name {:?}", String::from_utf8_lossy(&name)));
        }
        headers += 1;
        let name = String::from_utf8_lossy(&name).into_owned();
        if let Some(i) = SINGLETONS.iter().position(|s| s.contains(&name.as_str())) {
            seen[i] += 1;
            if seen[i] > 1 {
                return Err(format!("{name} twice"));
            }
        }
        last_was_length = name == "content-length" || name == "l";
        if last_was_length {
            let value = trim(&line[colon + 1..]);
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) || value.len() > 18 {
                return Err("bad Content-Length".into());
            }
            length = Some(
                String::from_utf8_lossy(value)
                    .parse::<usize>()
                    .unwrap_or(usize::MAX),
            );
        }
    }
    let length = length.ok_or("no Content-Length")?;
    let available = buf.len() - head_end;
    if length > available || (!stream && length != available) {
        return Err(format!("Content-Length {length}, {available} bytes follow"));
    }
    Ok(Strict {
        headers,
        content_length: length,
        body: &buf[head_end..head_end + length],
        len: head_end + length,
    })
}

/// Splits a stream of messages back to back.
pub fn read_stream(mut buf: &[u8]) -> Result<Vec<Strict<'_>>, String> {
    let mut all = Vec::new();
    while !buf.is_empty() {
        let m = read(buf, true)?;
        buf = &buf[m.len..];
        all.push(m);
    }
    Ok(all)
}

/// Request-Line (`Method SP URI SP SIP/2.0`, no trailing white space) or Status-Line.
fn start_line(line: &[u8]) -> Result<(), String> {
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let ok = if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"SIP/2.0 ") {
        parts[1].len() == 3 && parts[1].iter().all(u8::is_ascii_digit)
    } else {
        parts.len() == 3
            && parts.iter().all(|p| !p.is_empty())
            && parts[0].iter().all(|&b| token(b))
            && parts[1].iter().all(|&b| b > b' ' && b != 0x7f)
            && parts[2].eq_ignore_ascii_case(b"SIP/2.0")
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad start line {:?}",
            String::from_utf8_lossy(line)
        ))
    }
}

fn bare(head: &[u8], i: usize, b: u8) -> bool {
    match b {
        b'\r' => head.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || head[i - 1] != b'\r',
        _ => false,
    }
}

fn token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

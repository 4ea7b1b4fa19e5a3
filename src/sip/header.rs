//! Header names the proxy knows, with their compact forms (RFC 3261 §7.3.3, §20).
//!
//! Classification compares the name, loaded as two little-endian words, against a table of
//! known names with a per-name case mask (0x20 on letters only): a handful of instructions
//! per header line, exact for any input bytes, no allocation.

/// A header name, case-insensitively recognised; compact forms map to the same variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HeaderName {
    Via,
    Route,
    RecordRoute,
    MaxForwards,
    ContentLength,
    CallId,
    CSeq,
    From,
    To,
    Contact,
    ProxyRequire,
    ContentType,
    ContentEncoding,
    Supported,
    Subject,
    Event,
    ReferTo,
    AllowEvents,
    SessionExpires,
    Identity,
    Expires,
    /// Any other header; the proxy copies it unchanged.
    Other,
}

impl HeaderName {
    /// How many variants there are (the size of a per-name index table).
    pub const COUNT: usize = HeaderName::Other as usize + 1;

    /// Whether the header may appear at most once (RFC 3261 §7.3.1, §20: not a comma list),
    /// among the ones a proxy relies on: a duplicate makes readers disagree on the
    /// transaction, the hop count or the body (RFC 4475 §3.3.8, §3.3.9).
    pub fn is_singleton(self) -> bool {
        matches!(
            self,
            HeaderName::ContentLength
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::From
                | HeaderName::To
                | HeaderName::MaxForwards
                | HeaderName::ContentType
        )
    }

    /// The reason phrase of the 400 for a duplicated singleton.
    pub fn duplicate_phrase(self) -> &'static str {
        match self {
            HeaderName::ContentLength => "Multiple Content-Length",
            HeaderName::CallId => "Multiple Call-ID",
            HeaderName::CSeq => "Multiple CSeq",
            HeaderName::From => "Multiple From",
            HeaderName::To => "Multiple To",
            HeaderName::MaxForwards => "Multiple Max-Forwards",
            HeaderName::ContentType => "Multiple Content-Type",
            _ => "Duplicate Header",
        }
    }

    /// Recognises a header name (full or compact form), ignoring ASCII case.
    pub fn classify(name: &[u8]) -> HeaderName {
        if name.len() > 16 {
            return HeaderName::Other;
        }
        let mut padded = [0u8; 16];
        padded[..name.len()].copy_from_slice(name);
        let (w0, w1) = padded.split_at(8);
        HeaderName::classify_words(word(w0), word(w1), name.len())
    }

    /// Recognises a name of `len` bytes from its first sixteen bytes as two little-endian
    /// words; bytes past `len` may hold anything (they are masked off here).
    pub(crate) fn classify_words(w0: u64, w1: u64, len: usize) -> HeaderName {
        if len == 1 {
            return compact(w0 as u8);
        }
        let (m0, m1) = match len {
            2..=7 => (w0 & ((1u64 << (8 * len)) - 1), 0),
            8 => (w0, 0),
            9..=15 => (w0, w1 & ((1u64 << (8 * (len - 8))) - 1)),
            16 => (w0, w1),
            _ => return HeaderName::Other,
        };
        // Candidates by length: at most four names share one.
        let candidates: &[Known] = match len {
            2 => &KNOWN[1..2],
            3 => &KNOWN[0..1],
            4 => &KNOWN[2..4],
            5 => &KNOWN[4..6],
            7 => &KNOWN[6..10],
            8 => &KNOWN[10..12],
            9 => &KNOWN[12..13],
            12 => &KNOWN[13..17],
            13 => &KNOWN[17..18],
            14 => &KNOWN[18..19],
            15 => &KNOWN[19..20],
            16 => &KNOWN[20..21],
            _ => return HeaderName::Other,
        };
        candidates
            .iter()
            .find(|k| (m0 | k.case[0]) == k.lower[0] && (m1 | k.case[1]) == k.lower[1])
            .map_or(HeaderName::Other, |k| k.name)
    }
}

/// A little-endian word from the first eight bytes of `bytes` (which has at least eight).
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(w)
}

/// The sixteen bytes at `pos` as two little-endian words, zero-padded past the end of `buf`.
pub(crate) fn words_at(buf: &[u8], pos: usize) -> (u64, u64) {
    match buf.get(pos..pos + 16) {
        Some(b) => (word(b), word(&b[8..])),
        None => {
            let rest = buf.get(pos..).unwrap_or_default();
            let mut padded = [0u8; 16];
            padded[..rest.len()].copy_from_slice(rest);
            (word(&padded), word(&padded[8..]))
        }
    }
}

/// The index of the first `byte` in the word's eight bytes (SWAR: a borrow can only mark
/// bytes above the first match, so the lowest marked byte is exact).
pub(crate) fn find_in_word(w: u64, byte: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = w ^ (ONES * u64::from(byte));
    let found = x.wrapping_sub(ONES) & !x & HIGHS;
    (found != 0).then(|| found.trailing_zeros() as usize / 8)
}

/// A known full name: its lower-case text and case mask as two words each.
struct Known {
    lower: [u64; 2],
    case: [u64; 2],
    name: HeaderName,
}

const fn known(text: &str, name: HeaderName) -> Known {
    let bytes = text.as_bytes();
    let mut lower = [0u64; 2];
    let mut case = [0u64; 2];
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i].to_ascii_lowercase();
        lower[i / 8] |= (b as u64) << (8 * (i % 8));
        if b.is_ascii_lowercase() {
            case[i / 8] |= 0x20 << (8 * (i % 8));
        }
        i += 1;
    }
    Known { lower, case, name }
}

/// Every full name the proxy recognises (each at most 16 bytes), ordered by length: the
/// ranges in `classify_words` index into this order (a test checks they agree).
static KNOWN: [Known; 21] = [
    known("via", HeaderName::Via),
    known("to", HeaderName::To),
    known("from", HeaderName::From),
    known("cseq", HeaderName::CSeq),
    known("route", HeaderName::Route),
    known("event", HeaderName::Event),
    known("call-id", HeaderName::CallId),
    known("contact", HeaderName::Contact),
    known("subject", HeaderName::Subject),
    known("expires", HeaderName::Expires),
    known("refer-to", HeaderName::ReferTo),
    known("identity", HeaderName::Identity),
    known("supported", HeaderName::Supported),
    known("max-forwards", HeaderName::MaxForwards),
    known("record-route", HeaderName::RecordRoute),
    known("content-type", HeaderName::ContentType),
    known("allow-events", HeaderName::AllowEvents),
    known("proxy-require", HeaderName::ProxyRequire),
    known("content-length", HeaderName::ContentLength),
    known("session-expires", HeaderName::SessionExpires),
    known("content-encoding", HeaderName::ContentEncoding),
];

/// Compact forms: RFC 3261 §7.3.3 (i m e l c f s k t v), RFC 6665 (o u), RFC 3515 (r),
/// RFC 4028 (x), RFC 8224 (y).
fn compact(letter: u8) -> HeaderName {
    use HeaderName::*;
    match letter.to_ascii_lowercase() {
        b'v' => Via,
        b'i' => CallId,
        b'm' => Contact,
        b'f' => From,
        b't' => To,
        b'l' => ContentLength,
        b'c' => ContentType,
        b'e' => ContentEncoding,
        b'k' => Supported,
        b's' => Subject,
        b'o' => Event,
        b'r' => ReferTo,
        b'u' => AllowEvents,
        b'x' => SessionExpires,
        b'y' => Identity,
        _ => Other,
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName::{self, *};

    #[test]
    fn full_names_any_case() {
        let cases: &[(&[u8], HeaderName)] = &[
            (b"Via", Via),
            (b"VIA", Via),
            (b"route", Route),
            (b"Record-Route", RecordRoute),
            (b"max-FORWARDS", MaxForwards),
            (b"Content-Length", ContentLength),
            (b"Call-ID", CallId),
            (b"CSeq", CSeq),
            (b"From", From),
            (b"To", To),
            (b"Contact", Contact),
            (b"Proxy-Require", ProxyRequire),
            (b"Content-Type", ContentType),
            (b"Session-Expires", SessionExpires),
            (b"EXPIRES", Expires),
            (b"X-Custom", Other),
            (b"Vias", Other),
            (b"", Other),
        ];
        for (name, want) in cases {
            assert_eq!(HeaderName::classify(name), *want, "{:?}", name);
        }
    }

    #[test]
    fn compact_forms() {
        // RFC 3261 §7.3.3 and the extensions listed in `compact`.
        let cases: &[(&[u8], HeaderName)] = &[
            (b"v", Via),
            (b"I", CallId),
            (b"m", Contact),
            (b"f", From),
            (b"t", To),
            (b"l", ContentLength),
            (b"c", ContentType),
            (b"e", ContentEncoding),
            (b"k", Supported),
            (b"s", Subject),
            (b"o", Event),
            (b"r", ReferTo),
            (b"u", AllowEvents),
            (b"x", SessionExpires),
            (b"y", Identity),
            (b"z", Other),
        ];
        for (name, want) in cases {
            assert_eq!(HeaderName::classify(name), *want, "{:?}", name);
        }
    }

    #[test]
    fn near_misses_are_other() {
        // Bytes that differ from a known name only in the 0x20 bit are not letters there.
        for name in [
            &b"Vib"[..],
            b"Max_Forwards",
            b"Max\rForwards",
            b"Cont@ct",
            b"Call-Id2",
            b"Routf",
            b"Content-Lengt",
            b"Via\0",
            b"V\x01a",
            b"Content-Encodinggg",
        ] {
            assert_eq!(HeaderName::classify(name), Other, "{name:?}");
        }
    }

    #[test]
    fn swar_byte_search() {
        let w = u64::from_le_bytes(*b"Via: x:y");
        assert_eq!(super::find_in_word(w, b':'), Some(3));
        assert_eq!(super::find_in_word(w, b'y'), Some(7));
        assert_eq!(super::find_in_word(w, b'#'), None);
        let w = u64::from_le_bytes([0x3b, 0x3a, 0, 0, 0, 0, 0, 0]);
        assert_eq!(super::find_in_word(w, b':'), Some(1));
        assert_eq!(
            super::words_at(b"ab", 0),
            (u64::from(b'a') | u64::from(b'b') << 8, 0)
        );
    }

    #[test]
    fn garbage_after_the_name_is_ignored() {
        let w0 = u64::from_le_bytes(*b"Via: SIP");
        let w1 = u64::from_le_bytes(*b"/2.0/UDP");
        assert_eq!(HeaderName::classify_words(w0, w1, 3), Via);
        let w0 = u64::from_le_bytes(*b"Content-");
        let w1 = u64::from_le_bytes(*b"Length: ");
        assert_eq!(HeaderName::classify_words(w0, w1, 14), ContentLength);
        assert_eq!(HeaderName::classify_words(w0, w1, 13), Other);
    }

    #[test]
    fn every_known_name_is_found_through_its_length_range() {
        for k in super::KNOWN.iter() {
            let text: Vec<u8> = (0..16)
                .map(|i| (k.lower[i / 8] >> (8 * (i % 8))) as u8)
                .take_while(|&b| b != 0)
                .collect();
            assert_eq!(
                HeaderName::classify(&text),
                k.name,
                "{}",
                String::from_utf8_lossy(&text)
            );
            let upper = text.to_ascii_uppercase();
            assert_eq!(HeaderName::classify(&upper), k.name);
        }
    }

    #[test]
    fn count_covers_every_variant() {
        assert_eq!(HeaderName::COUNT, Other as usize + 1);
    }
}

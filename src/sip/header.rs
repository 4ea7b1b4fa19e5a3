//! Header names the proxy knows, with their compact forms (RFC 3261 §7.3.3, §20).
//!
//! Classification is a switch on the name's length and then a case-insensitive compare, so
//! the scanner spends a few nanoseconds per header line and never allocates.

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
    /// Any other header; the proxy copies it unchanged.
    Other,
}

impl HeaderName {
    /// How many variants there are (the size of a per-name index table).
    pub const COUNT: usize = HeaderName::Other as usize + 1;

    /// Recognises a header name (full or compact form), ignoring ASCII case.
    pub fn classify(name: &[u8]) -> HeaderName {
        use HeaderName::*;
        let is = |full: &[u8]| name.eq_ignore_ascii_case(full);
        match name.len() {
            1 => compact(name[0]),
            2 if is(b"to") => To,
            3 if is(b"via") => Via,
            4 if is(b"from") => From,
            4 if is(b"cseq") => CSeq,
            5 if is(b"route") => Route,
            5 if is(b"event") => Event,
            7 if is(b"call-id") => CallId,
            7 if is(b"contact") => Contact,
            7 if is(b"subject") => Subject,
            8 if is(b"refer-to") => ReferTo,
            8 if is(b"identity") => Identity,
            9 if is(b"supported") => Supported,
            12 if is(b"record-route") => RecordRoute,
            12 if is(b"max-forwards") => MaxForwards,
            12 if is(b"content-type") => ContentType,
            12 if is(b"allow-events") => AllowEvents,
            13 if is(b"proxy-require") => ProxyRequire,
            14 if is(b"content-length") => ContentLength,
            15 if is(b"session-expires") => SessionExpires,
            16 if is(b"content-encoding") => ContentEncoding,
            _ => Other,
        }
    }
}

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
    fn count_covers_every_variant() {
        assert_eq!(HeaderName::COUNT, Other as usize + 1);
    }
}

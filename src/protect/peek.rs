//! The little the guard reads of a message before the core scans it: whether it is a request,
//! and its method class. Bytes in, never allocates or panics. Anything odd is left for the
//! core to judge (and to drop with a reason).

use memchr::memchr;

/// The method classes that have limits of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodClass {
    Register = 0,
    Invite = 1,
    Other = 2,
}

/// The class of a request, or `None` for a response (`SIP/…`) or anything that does not
/// start with a method token (keep-alives, garbage: the core drops those).
pub(crate) fn request_class(data: &[u8]) -> Option<MethodClass> {
    let end = memchr(b' ', &data[..data.len().min(32)])?;
    let method = &data[..end];
    if method.is_empty() || method.starts_with(b"SIP/") || !method.iter().all(u8::is_ascii_graphic)
    {
        return None;
    }
    Some(match method {
        b"REGISTER" => MethodClass::Register,
        b"INVITE" => MethodClass::Invite,
        _ => MethodClass::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_from_responses_and_garbage() {
        assert_eq!(
            request_class(b"INVITE sip:a@b SIP/2.0\r\n"),
            Some(MethodClass::Invite)
        );
        assert_eq!(
            request_class(b"REGISTER sip:b SIP/2.0\r\n"),
            Some(MethodClass::Register)
        );
        assert_eq!(
            request_class(b"OPTIONS sip:b SIP/2.0\r\n"),
            Some(MethodClass::Other)
        );
        assert_eq!(
            request_class(b"invite sip:b SIP/2.0\r\n"),
            Some(MethodClass::Other)
        );
        assert_eq!(request_class(b"SIP/2.0 200 OK\r\n"), None);
        assert_eq!(request_class(b"\r\n\r\n"), None);
        assert_eq!(request_class(b""), None);
        assert_eq!(request_class(b" INVITE"), None);
        assert_eq!(request_class(&[0xff, b' ', b'x']), None);
        assert_eq!(request_class(&[b'A'; 100]), None);
    }
}

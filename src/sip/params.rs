//! `;name[=value]` parameter lists, as found in URIs, Via and name-addr headers
//! (RFC 3261 §19.1.1 uri-parameters, §20.42 via-params, §25.1 generic-param).

use super::Span;
use super::chars::{TOKEN, quoted_end};

/// One parameter: its name and, when it has one, its value (a quoted value keeps its quotes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: Span,
    pub value: Option<Span>,
}

impl Param {
    /// Whether the name is `name`, ignoring ASCII case (parameter names are
    /// case-insensitive, RFC 3261 §7.3.1 and §19.1.4).
    pub fn is(&self, buf: &[u8], name: &[u8]) -> bool {
        self.name.of(buf).eq_ignore_ascii_case(name)
    }
}

/// Iterates the parameters in `buf[start..end]`, which must begin (after optional white
/// space) with `;`. Yields `Err(())` once and stops at the first syntax error.
#[derive(Clone, Debug)]
pub struct Params<'a> {
    /// `buf[..end]`: offsets into it are offsets into `buf`.
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

/// Linear white space inside a value (a folded line's CR LF included).
static LWS: [bool; 256] = class(b" \t\r\n");
/// Bytes that end an unquoted parameter value: `;` and white space.
static VALUE_END: [bool; 256] = class(b"; \t\r\n");

const fn class(members: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < members.len() {
        t[members[i] as usize] = true;
        i += 1;
    }
    t
}

impl<'a> Params<'a> {
    pub fn new(buf: &'a [u8], span: Span) -> Params<'a> {
        let bytes = &buf[..span.end().min(buf.len())];
        Params {
            bytes,
            pos: span.start().min(bytes.len()),
            done: false,
        }
    }

    /// The first offset at or after `i` whose byte is (`want == true`) or is not in `table`.
    fn advance(&self, mut i: usize, table: &[bool; 256], want: bool) -> usize {
        while let Some(&b) = self.bytes.get(i) {
            if table[b as usize] != want {
                break;
            }
            i += 1;
        }
        i
    }

    fn fail(&mut self) -> Option<Result<Param, ()>> {
        self.done = true;
        Some(Err(()))
    }

    /// A value at `start`: a quoted string (quotes kept), else bytes up to `;` or white space.
    fn value(&self, start: usize) -> Option<Span> {
        if self.bytes.get(start) == Some(&b'"') {
            let close = quoted_end(self.bytes, start, self.bytes.len())?;
            return Some(Span::new(start, close));
        }
        let end = self.advance(start, &VALUE_END, false);
        (end > start).then(|| Span::new(start, end))
    }
}

impl Iterator for Params<'_> {
    type Item = Result<Param, ()>;

    fn next(&mut self) -> Option<Result<Param, ()>> {
        if self.done {
            return None;
        }
        let semi = self.advance(self.pos, &LWS, true);
        match self.bytes.get(semi) {
            None => {
                self.done = true;
                return None;
            }
            Some(b';') => {}
            Some(_) => return self.fail(),
        }
        let name_start = self.advance(semi + 1, &LWS, true);
        let name_end = self.advance(name_start, &TOKEN, true);
        if name_end == name_start {
            return self.fail();
        }
        let name = Span::new(name_start, name_end);
        let equals = self.advance(name_end, &LWS, true);
        if self.bytes.get(equals) != Some(&b'=') {
            self.pos = name_end;
            return Some(Ok(Param { name, value: None }));
        }
        let value_start = self.advance(equals + 1, &LWS, true);
        match self.value(value_start) {
            Some(value) => {
                self.pos = value.end();
                Some(Ok(Param {
                    name,
                    value: Some(value),
                }))
            }
            None => self.fail(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed<'a> = Result<(&'a [u8], Option<&'a [u8]>), ()>;

    fn params(v: &[u8]) -> Vec<Parsed<'_>> {
        Params::new(v, Span::new(0, v.len()))
            .map(|p| p.map(|p| (p.name.of(v), p.value.map(|s| s.of(v)))))
            .collect()
    }

    #[test]
    fn names_and_values() {
        assert_eq!(
            params(b";branch=z9hG4bK1;rport;received=10.0.0.1"),
            vec![
                Ok((&b"branch"[..], Some(&b"z9hG4bK1"[..]))),
                Ok((&b"rport"[..], None)),
                Ok((&b"received"[..], Some(&b"10.0.0.1"[..]))),
            ]
        );
        assert_eq!(
            params(b" ; tag = abc ;lr"),
            vec![Ok((&b"tag"[..], Some(&b"abc"[..]))), Ok((&b"lr"[..], None))]
        );
        assert_eq!(
            params(b";+sip.instance=\"<urn:uuid:1;x>\";q=0.5"),
            vec![
                Ok((&b"+sip.instance"[..], Some(&b"\"<urn:uuid:1;x>\""[..]))),
                Ok((&b"q"[..], Some(&b"0.5"[..]))),
            ]
        );
        assert_eq!(
            params(b";received=2001:db8::1"),
            vec![Ok((&b"received"[..], Some(&b"2001:db8::1"[..])))]
        );
        assert_eq!(params(b""), vec![]);
    }

    #[test]
    fn errors_stop_the_iteration() {
        assert_eq!(params(b"x"), vec![Err(())]);
        assert_eq!(params(b";"), vec![Err(())]);
        assert_eq!(params(b";a=\"open"), vec![Err(())]);
        assert_eq!(params(b";a=;b"), vec![Err(())]);
        assert_eq!(params(b";a junk"), vec![Ok((&b"a"[..], None)), Err(())]);
        assert_eq!(params(b";a=\"x\\"), vec![Err(())]);
    }

    #[test]
    fn param_names_compare_case_insensitively() {
        let v = b";LR";
        let p = Params::new(v, Span::new(0, 3)).next().unwrap().unwrap();
        assert!(p.is(v, b"lr"));
    }
}

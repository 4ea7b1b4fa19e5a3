//! `;name[=value]` parameter lists, as found in URIs, Via and name-addr headers
//! (RFC 3261 §19.1.1 uri-parameters, §20.42 via-params, §25.1 generic-param).

use super::Span;
use super::chars::{TOKEN, is_lws, quoted_end};

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
    buf: &'a [u8],
    pos: usize,
    end: usize,
    done: bool,
}

impl<'a> Params<'a> {
    pub fn new(buf: &'a [u8], span: Span) -> Params<'a> {
        let end = span.end().min(buf.len());
        Params {
            buf,
            pos: span.start().min(end),
            end,
            done: false,
        }
    }

    fn skip_lws(&mut self) {
        self.pos = self.skip_while_at(is_lws);
    }

    /// The offset of the first byte at or after `pos` (before `end`) for which `keep` is false.
    fn skip_while_at(&self, keep: impl Fn(u8) -> bool) -> usize {
        let rest = self.buf.get(self.pos..self.end).unwrap_or_default();
        self.pos + rest.iter().position(|&b| !keep(b)).unwrap_or(rest.len())
    }

    fn fail(&mut self) -> Option<Result<Param, ()>> {
        self.done = true;
        Some(Err(()))
    }

    /// A value: a quoted string (quotes kept), else bytes up to `;` or white space.
    fn value(&mut self) -> Option<Span> {
        let start = self.pos;
        if self.buf.get(start) == Some(&b'"') {
            let close = quoted_end(self.buf, start, self.end)?;
            self.pos = close;
            return Some(Span::new(start, close));
        }
        self.pos = self.skip_while_at(|b| b != b';' && !is_lws(b));
        (self.pos > start).then(|| Span::new(start, self.pos))
    }
}

impl Iterator for Params<'_> {
    type Item = Result<Param, ()>;

    fn next(&mut self) -> Option<Result<Param, ()>> {
        if self.done {
            return None;
        }
        self.skip_lws();
        if self.pos >= self.end {
            self.done = true;
            return None;
        }
        if self.buf[self.pos] != b';' {
            return self.fail();
        }
        self.pos += 1;
        self.skip_lws();
        let name_start = self.pos;
        self.pos = self.skip_while_at(|b| TOKEN[b as usize]);
        if self.pos == name_start {
            return self.fail();
        }
        let name = Span::new(name_start, self.pos);
        self.skip_lws();
        if self.buf.get(self.pos) != Some(&b'=') || self.pos >= self.end {
            return Some(Ok(Param { name, value: None }));
        }
        self.pos += 1;
        self.skip_lws();
        match self.value() {
            Some(value) => Some(Ok(Param {
                name,
                value: Some(value),
            })),
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

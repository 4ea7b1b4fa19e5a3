//! Matching a piece of text (a user part, a host): exact, prefix, suffix, a regular
//! expression, or membership of a named set. Allocation-free: regular expressions run with
//! a per-worker cache ([`Scratch`]).

use regex_automata::dfa::{Automaton, dense};
use regex_automata::meta::{BuildError, Cache, Regex};
use regex_automata::{Anchored, Input};

/// The most memory one compiled pattern's full DFA may take before the meta engine is used.
const DFA_LIMIT: usize = 256 << 10;

/// A compiled regular expression: a full DFA when one is small enough (a few nanoseconds on a
/// user part, no cache), else the meta engine with a per-worker cache.
#[derive(Debug)]
pub(crate) enum Pattern {
    Dfa(Box<dense::DFA<Vec<u32>>>),
    Meta(Regex),
}

impl Pattern {
    /// Compiles `pattern`; `Err` says why it is not a regular expression.
    pub(crate) fn new(pattern: &str) -> Result<Pattern, String> {
        let meta = Regex::new(pattern).map_err(|e| why(&e))?;
        let config = dense::Config::new()
            .dfa_size_limit(Some(DFA_LIMIT))
            .determinize_size_limit(Some(DFA_LIMIT));
        match dense::Builder::new().configure(config).build(pattern) {
            Ok(dfa) => Ok(Pattern::Dfa(Box::new(dfa))),
            Err(_) => Ok(Pattern::Meta(meta)),
        }
    }

    pub(crate) fn is_match(&self, cache: Option<&mut Cache>, text: &[u8]) -> bool {
        let input = Input::new(text).anchored(Anchored::No).earliest(true);
        match (self, cache) {
            (Pattern::Dfa(dfa), _) => matches!(dfa.try_search_fwd(&input), Ok(Some(_))),
            (Pattern::Meta(re), Some(cache)) => re.search_half_with(cache, &input).is_some(),
            (Pattern::Meta(re), None) => re.is_match(input),
        }
    }
}

/// The syntax error's last line (the one that says what is wrong).
fn why(e: &BuildError) -> String {
    let text = std::error::Error::source(e).map_or(e.to_string(), |s| s.to_string());
    text.lines().last().unwrap_or_default().trim().to_owned()
}

/// What the rules compiled once: the regular expressions and the named sets.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub regexes: Vec<Pattern>,
    /// Named domain sets (lower-case names); index 0 is `ours`.
    pub domains: Vec<DomainSet>,
    /// Named address sets; index 0 is `trusted`.
    pub addresses: Vec<AddressSet>,
}

/// A named set of CIDR blocks.
#[derive(Debug, Default)]
pub(crate) struct AddressSet {
    pub name: Box<str>,
    pub blocks: Vec<super::addr::Cidr>,
}

/// A named set of domain names or host addresses, compared case-insensitively.
#[derive(Debug, Default)]
pub(crate) struct DomainSet {
    pub name: Box<str>,
    pub hosts: Vec<Box<[u8]>>,
    /// Also matches the proxy's own addresses and aliases (the built-in `ours`).
    pub includes_self: bool,
}

/// Per-worker mutable state for evaluation: one regex cache per compiled regex.
#[derive(Debug, Default)]
pub struct Scratch {
    caches: Vec<Option<Cache>>,
}

impl Scratch {
    /// Caches for `tables`' regexes (made when the policy changes, off the per-message path).
    pub(crate) fn for_tables(tables: &Tables) -> Scratch {
        Scratch {
            caches: tables
                .regexes
                .iter()
                .map(|p| match p {
                    Pattern::Meta(re) => Some(re.create_cache()),
                    Pattern::Dfa(_) => None,
                })
                .collect(),
        }
    }
}

/// One text test.
#[derive(Debug)]
pub(crate) enum TextMatch {
    Exact(Box<[u8]>),
    AnyOf(Vec<Box<[u8]>>),
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
    /// Index into [`Tables::regexes`]; the regex searches the whole text, unanchored
    /// unless it says `^` / `$`.
    Regex(usize),
    /// Index into [`Tables::domains`].
    Set(usize),
}

/// Context a text test may need besides the text.
pub(crate) struct TextContext<'a> {
    pub tables: &'a Tables,
    pub scratch: &'a mut Scratch,
    /// The Request-URI names the proxy (for sets that include its own addresses).
    pub to_me: bool,
}

impl TextMatch {
    /// `fold`: compare ASCII case-insensitively (hosts; users are case-sensitive, RFC 3261
    /// §19.1.4).
    pub(crate) fn matches(&self, text: &[u8], fold: bool, cx: &mut TextContext<'_>) -> bool {
        let eq = |a: &[u8], b: &[u8]| {
            if fold {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match self {
            TextMatch::Exact(want) => eq(text, want),
            TextMatch::AnyOf(list) => list.iter().any(|w| eq(text, w)),
            TextMatch::Prefix(p) => text.len() >= p.len() && eq(&text[..p.len()], p),
            TextMatch::Suffix(s) => text.len() >= s.len() && eq(&text[text.len() - s.len()..], s),
            TextMatch::Regex(i) => cx.tables.regexes.get(*i).is_some_and(|p| {
                let cache = cx.scratch.caches.get_mut(*i).and_then(Option::as_mut);
                p.is_match(cache, text)
            }),
            TextMatch::Set(i) => cx.tables.domains.get(*i).is_some_and(|set| {
                (set.includes_self && cx.to_me)
                    || set.hosts.iter().any(|h| h.eq_ignore_ascii_case(text))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Tables {
        Tables {
            regexes: vec![
                Pattern::new(r"^\+1[0-9]{3}$").unwrap(),
                Pattern::Meta(Regex::new(r"^\+1[0-9]{3}$").unwrap()),
            ],
            domains: vec![DomainSet {
                name: "ours".into(),
                hosts: vec![b"edge.example".to_vec().into()],
                includes_self: true,
            }],
            addresses: Vec::new(),
        }
    }

    fn check(m: &TextMatch, text: &str, fold: bool, to_me: bool) -> bool {
        let tables = tables();
        let mut scratch = Scratch::for_tables(&tables);
        let mut cx = TextContext {
            tables: &tables,
            scratch: &mut scratch,
            to_me,
        };
        m.matches(text.as_bytes(), fold, &mut cx)
    }

    #[test]
    fn exact_prefix_suffix_and_lists() {
        let exact = TextMatch::Exact(b"alice".to_vec().into());
        assert!(check(&exact, "alice", false, false));
        assert!(
            !check(&exact, "Alice", false, false),
            "users are case-sensitive"
        );
        assert!(check(&exact, "ALICE", true, false));
        let prefix = TextMatch::Prefix(b"900".to_vec().into());
        assert!(check(&prefix, "900123", false, false));
        assert!(!check(&prefix, "90", false, false));
        let suffix = TextMatch::Suffix(b".example".to_vec().into());
        assert!(check(&suffix, "a.EXAMPLE", true, false));
        let any = TextMatch::AnyOf(vec![b"a".to_vec().into(), b"b".to_vec().into()]);
        assert!(check(&any, "b", false, false));
        assert!(!check(&any, "c", false, false));
    }

    #[test]
    fn regexes_and_sets() {
        for i in [0, 1] {
            let re = TextMatch::Regex(i);
            assert!(check(&re, "+1555", false, false), "{i}");
            assert!(!check(&re, "+15555", false, false), "{i}");
            assert!(!check(&re, "x+1555", false, false), "{i}");
        }
        assert!(matches!(tables().regexes[0], Pattern::Dfa(_)));
        let unanchored = Pattern::new("55").unwrap();
        assert!(unanchored.is_match(None, b"+1555"));
        let set = TextMatch::Set(0);
        assert!(check(&set, "EDGE.example", true, false));
        assert!(!check(&set, "other.example", true, false));
        assert!(
            check(&set, "127.0.0.1", true, true),
            "ours includes the proxy itself"
        );
        assert!(!TextMatch::Set(9).matches(
            b"x",
            true,
            &mut TextContext {
                tables: &tables(),
                scratch: &mut Scratch::default(),
                to_me: false
            }
        ));
    }
}

//! Compiling the policy from the config file: every name resolved, every regex built, every
//! reply rendered, so that errors surface here with file and line, never per message.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::sip::{HeaderName, Transport};

use super::action::{
    Action, OwnedModifiers, OwnedReply, Target, challenges, contact_lines, destination_of_uri,
};
use super::addr::{Cidr, loopback};
use super::file::{
    ContactFile, HeaderFile, HeadersFile, OneOrMany, PolicyFile, RouteFile, TextFile,
};
use super::predicate::{HeaderTest, Methods, Predicate, Sources, transport_bit};
use super::rules::{Policy, Rule, RuleHits, ScriptSettings};
use super::text::{AddressSet, DomainSet, Pattern, Tables, TextMatch};
use super::verdict::HeaderKey;

/// Default instruction budget of one script call.
pub const DEFAULT_SCRIPT_INSTRUCTIONS: u32 = 100_000;
/// Default memory one script call may add.
pub const DEFAULT_SCRIPT_MEMORY: usize = 1 << 20;

/// Why a policy did not compile: the file, the line, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for PolicyError {}

/// What compiling needs besides the file.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Workers that will count hits (one counter row each).
    pub workers: usize,
    /// Domains that are ours besides `[policy] domains`: the registrar's, so that its users
    /// are not refused as a relay.
    pub domains: Vec<String>,
    /// The configured destination groups' names, which `to = "group:NAME"` may name.
    pub groups: Vec<String>,
}

impl CompileOptions {
    /// Options for `workers` counter rows and no extra domains.
    pub fn new(workers: usize) -> CompileOptions {
        CompileOptions {
            workers,
            domains: Vec::new(),
            groups: Vec::new(),
        }
    }
}

/// Reads and compiles the policy in the config file at `path` (and its script).
pub fn compile_file(path: &Path, options: &CompileOptions) -> Result<Policy, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        file: path.to_owned(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    compile_str(&text, path, options)
}

/// The built-in policy when the operator writes none: the relay guard alone, loopback trusted.
pub fn relay_guard(options: &CompileOptions) -> Policy {
    compile_str("", Path::new("(built-in)"), options).unwrap_or_else(|_| unreachable!())
}

/// Compiles policy text; `path` names it in errors and anchors the script's relative path.
pub fn compile_str(
    text: &str,
    path: &Path,
    options: &CompileOptions,
) -> Result<Policy, PolicyError> {
    let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError {
        file: path.to_owned(),
        line: e.span().map_or(0, |s| line_of(text, s.start)),
        message: e.message().trim_end().to_owned(),
    })?;
    Compiler {
        text,
        path,
        tables: Tables::default(),
        functions: Vec::new(),
        groups: &options.groups,
    }
    .run(file, options)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |t| t.bytes().filter(|&b| b == b'\n').count())
        + 1
}

struct Compiler<'a> {
    text: &'a str,
    path: &'a Path,
    tables: Tables,
    functions: Vec<Box<str>>,
    groups: &'a [String],
}

type Fallible<T> = Result<T, String>;

/// A text match key of a rule and the predicate it makes.
type TextKey<'a> = (&'a Option<TextFile>, fn(TextMatch) -> Predicate);

impl Compiler<'_> {
    fn run(mut self, file: PolicyFile, options: &CompileOptions) -> Result<Policy, PolicyError> {
        let (section, section_line) = match file.policy {
            Some(s) => {
                let line = line_of(self.text, s.span().start);
                (s.into_inner(), line)
            }
            None => (Default::default(), 1),
        };
        self.sets(&section, &file.sets, &options.domains)
            .map_err(|m| self.error(section_line, m))?;
        let mut rules = Vec::with_capacity(file.route.len());
        for (i, route) in file.route.iter().enumerate() {
            let line = line_of(self.text, route.span().start);
            let rule = self
                .rule(route.get_ref(), i)
                .map_err(|m| self.error(line, m))?;
            rules.push(Rule { line, ..rule });
        }
        let default = match &section.default {
            Some(d) => self
                .action(d)
                .map_err(|m| self.error(section_line, format!("default: {m}")))?,
            None => Action::RelayGuard(OwnedReply::new(403, "Forbidden", Vec::new())),
        };
        let script = self.script(&section, section_line)?;
        if script.is_none() && !self.functions.is_empty() {
            let line = rules
                .iter()
                .find(|r| matches!(r.action, Action::Script(_)))
                .map_or(0, |r| r.line);
            return Err(self.error(
                line,
                "a script action needs [policy] script = \"FILE.lua\"".into(),
            ));
        }
        Ok(Policy {
            hits: RuleHits::new(rules.len(), options.workers),
            rules,
            tables: self.tables,
            default,
            script,
            origin: self.path.to_owned(),
        })
    }

    fn error(&self, line: usize, message: String) -> PolicyError {
        PolicyError {
            file: self.path.to_owned(),
            line,
            message,
        }
    }

    /// `ours` (domains + the proxy itself), `trusted` (loopback unless given), then `[sets]`.
    fn sets(
        &mut self,
        section: &super::file::PolicySection,
        sets: &std::collections::BTreeMap<String, Vec<String>>,
        extra_domains: &[String],
    ) -> Fallible<()> {
        let domains = section.domains.iter().flatten().chain(extra_domains);
        self.tables.domains.push(DomainSet {
            name: "ours".into(),
            hosts: domains
                .map(|d| d.to_ascii_lowercase().into_bytes().into())
                .collect(),
            includes_self: true,
        });
        let trusted = match &section.trusted {
            Some(list) => list.iter().map(|c| cidr(c)).collect::<Fallible<_>>()?,
            None => loopback(),
        };
        self.tables.addresses.push(AddressSet {
            name: "trusted".into(),
            blocks: trusted,
        });
        for (name, items) in sets {
            if name == "ours" || name == "trusted" {
                return Err(format!("set {name:?} is built in: set it in [policy]"));
            }
            let blocks: Option<Vec<Cidr>> = items.iter().map(|i| Cidr::parse(i)).collect();
            match blocks {
                Some(blocks) => self.tables.addresses.push(AddressSet {
                    name: name.as_str().into(),
                    blocks,
                }),
                None => self.tables.domains.push(DomainSet {
                    name: name.as_str().into(),
                    hosts: items
                        .iter()
                        .map(|d| d.to_ascii_lowercase().into_bytes().into())
                        .collect(),
                    includes_self: false,
                }),
            }
        }
        Ok(())
    }

    fn rule(&mut self, route: &RouteFile, index: usize) -> Fallible<Rule> {
        let name = route
            .name
            .clone()
            .unwrap_or_else(|| format!("route-{}", index + 1));
        let predicates = self
            .predicates(route)
            .map_err(|m| format!("route {name:?}: {m}"))?;
        let action = self
            .action(route)
            .map_err(|m| format!("route {name:?}: {m}"))?;
        Ok(Rule {
            name: name.into(),
            line: 0,
            predicates,
            action,
            for_dialogs: route.in_dialog == Some(true),
        })
    }

    fn predicates(&mut self, r: &RouteFile) -> Fallible<Vec<Predicate>> {
        let mut out = Vec::new();
        if let Some(m) = &r.method {
            let mut methods = Methods::default();
            for name in m.items() {
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
                {
                    return Err(format!("method {name:?} is not a SIP method token"));
                }
                methods.add(name);
            }
            out.push(Predicate::Method(methods));
        }
        let texts: [TextKey<'_>; 6] = [
            (&r.uri_user, Predicate::UriUser),
            (&r.uri_host, Predicate::UriHost),
            (&r.from_user, Predicate::FromUser),
            (&r.from_host, Predicate::FromHost),
            (&r.to_user, Predicate::ToUser),
            (&r.to_host, Predicate::ToHost),
        ];
        for (spec, make) in texts {
            if let Some(spec) = spec {
                out.push(make(self.text_match(spec)?));
            }
        }
        if let Some(s) = &r.source {
            out.push(Predicate::Source(self.sources(s)?));
        }
        if let Some(t) = &r.transport {
            let mut bits = 0;
            for name in t.items() {
                let t = Transport::from_token(name.as_bytes())
                    .ok_or(format!("unknown transport {name:?}"))?;
                bits |= transport_bit(t);
            }
            out.push(Predicate::Transport(bits));
        }
        if let Some(l) = &r.listener {
            let addrs = l
                .items()
                .iter()
                .map(|a| {
                    let bare = a
                        .split_once(':')
                        .filter(|(t, _)| matches!(*t, "udp" | "tcp"))
                        .map_or(*a, |(_, rest)| rest);
                    bare.parse()
                        .map_err(|_| format!("listener {a:?}: expected IP:PORT"))
                })
                .collect::<Fallible<_>>()?;
            out.push(Predicate::Listener(addrs));
        }
        match &r.header {
            Some(HeadersFile::One(h)) => out.push(self.header(h)?),
            Some(HeadersFile::Many(list)) => {
                for h in list {
                    out.push(self.header(h)?);
                }
            }
            None => {}
        }
        if let Some(d) = r.in_dialog {
            out.push(Predicate::InDialog(d));
        }
        if let Some(n) = r.size_above {
            out.push(Predicate::SizeAbove(n));
        }
        if let Some(n) = r.size_at_most {
            out.push(Predicate::SizeAtMost(n));
        }
        if let Some(not) = &r.not {
            if not.action.is_some() || not.name.is_some() {
                return Err("`not` holds match keys only".into());
            }
            let inner = self.predicates(not)?;
            if inner.is_empty() {
                return Err("`not` needs at least one match key".into());
            }
            out.push(Predicate::Not(inner));
        }
        Ok(out)
    }

    fn regex(&mut self, pattern: &str) -> Fallible<usize> {
        let re = Pattern::new(pattern).map_err(|why| format!("regex {pattern:?}: {why}"))?;
        self.tables.regexes.push(re);
        Ok(self.tables.regexes.len() - 1)
    }

    fn text_match(&mut self, spec: &TextFile) -> Fallible<TextMatch> {
        let bytes = |s: &str| s.as_bytes().to_vec().into_boxed_slice();
        Ok(match spec {
            TextFile::Exact(s) => TextMatch::Exact(bytes(s)),
            TextFile::AnyOf(list) => TextMatch::AnyOf(list.iter().map(|s| bytes(s)).collect()),
            TextFile::Table(t) => {
                let given = [&t.exact, &t.prefix, &t.suffix, &t.regex, &t.set];
                if given.iter().filter(|g| g.is_some()).count() != 1 {
                    return Err(
                        "a text match takes exactly one of exact, prefix, suffix, regex, set"
                            .into(),
                    );
                }
                if let Some(s) = &t.exact {
                    TextMatch::Exact(bytes(s))
                } else if let Some(s) = &t.prefix {
                    TextMatch::Prefix(bytes(s))
                } else if let Some(s) = &t.suffix {
                    TextMatch::Suffix(bytes(s))
                } else if let Some(s) = &t.regex {
                    TextMatch::Regex(self.regex(s)?)
                } else {
                    let name = t.set.as_deref().unwrap_or_default();
                    let i = self.tables.domains.iter().position(|d| &*d.name == name);
                    TextMatch::Set(i.ok_or(format!(
                        "no domain set named {name:?} (ours, or one of [sets])"
                    ))?)
                }
            }
        })
    }

    fn sources(&self, spec: &OneOrMany) -> Fallible<Sources> {
        let mut sources = Sources::default();
        for item in spec.items() {
            if let Some(block) = Cidr::parse(item) {
                sources.blocks.push(block);
            } else {
                let i = self.tables.addresses.iter().position(|s| &*s.name == item);
                sources.sets.push(i.ok_or(format!(
                    "source {item:?} is neither an address/CIDR nor an address set (trusted, or one of [sets])"
                ))?);
            }
        }
        Ok(sources)
    }

    fn header(&mut self, h: &HeaderFile) -> Fallible<Predicate> {
        let key = header_key(&h.name)?;
        let tests = [
            h.present.is_some(),
            h.equals.is_some(),
            h.contains.is_some(),
            h.regex.is_some(),
        ];
        let test = match tests.iter().filter(|t| **t).count() {
            0 => HeaderTest::Present,
            1 => {
                if let Some(p) = h.present {
                    if p {
                        HeaderTest::Present
                    } else {
                        HeaderTest::Absent
                    }
                } else if let Some(v) = &h.equals {
                    HeaderTest::Equals(v.as_bytes().into())
                } else if let Some(v) = &h.contains {
                    HeaderTest::Contains(v.as_bytes().into())
                } else {
                    HeaderTest::Regex(self.regex(h.regex.as_deref().unwrap_or_default())?)
                }
            }
            _ => {
                return Err(format!(
                    "header {:?}: one of present, equals, contains, regex",
                    h.name
                ));
            }
        };
        Ok(Predicate::Header(key, test))
    }

    fn action(&mut self, r: &RouteFile) -> Fallible<Action> {
        let name = r
            .action
            .as_deref()
            .ok_or("no action (accept, reject, proxy, redirect, challenge, drop, script)")?;
        let extra = header_lines(r.headers.as_deref().unwrap_or_default())?;
        let allowed: &[&str] = match name {
            "accept" => &["headers"],
            "reject" => &["code", "reason", "headers"],
            "redirect" => &["code", "reason", "headers", "contacts"],
            "challenge" => &["realm"],
            "proxy" => &["to", "modifiers"],
            "drop" => &[],
            "script" => &["function"],
            other => return Err(format!("unknown action {other:?}")),
        };
        self.check_parameters(r, allowed)?;
        Ok(match name {
            "accept" => Action::Accept(OwnedReply::new(200, "OK", extra)),
            "reject" => {
                let code = r.code.unwrap_or(403);
                if !(300..=699).contains(&code) {
                    return Err(format!("reject code {code}: expected 300-699"));
                }
                let reason = r
                    .reason
                    .clone()
                    .unwrap_or_else(|| default_reason(code).into());
                Action::Reject(OwnedReply::new(code, &reason, extra))
            }
            "redirect" => {
                let code = r.code.unwrap_or(302);
                if !(300..=399).contains(&code) {
                    return Err(format!("redirect code {code}: expected 3xx"));
                }
                let contacts = r.contacts.as_deref().unwrap_or_default();
                if contacts.is_empty() {
                    return Err("redirect needs contacts = [\"sip:...\"]".into());
                }
                let contacts = contacts
                    .iter()
                    .map(|c| match c {
                        ContactFile::Uri(u) => (u.clone(), None),
                        ContactFile::Table { uri, q } => (uri.clone(), *q),
                    })
                    .collect::<Vec<_>>();
                for (uri, q) in &contacts {
                    if destination_of_uri(uri).is_none() || uri.contains(['<', '>', '\r', '\n']) {
                        return Err(format!("contact {uri:?}: expected sip:user@host[:port]"));
                    }
                    if q.is_some_and(|q| !(0.0..=1.0).contains(&q)) {
                        return Err(format!("contact {uri:?}: q must be between 0 and 1"));
                    }
                }
                let mut lines = contact_lines(&contacts);
                lines.extend_from_slice(&extra);
                let reason = r
                    .reason
                    .clone()
                    .unwrap_or_else(|| default_reason(code).into());
                Action::Redirect(OwnedReply::new(code, &reason, lines))
            }
            "challenge" => {
                let realm = r.realm.as_deref().unwrap_or("ferrovia");
                if realm.contains(['"', '\r', '\n']) {
                    return Err("realm may not contain quotes or line breaks".into());
                }
                let (register, other) = challenges(realm);
                Action::Challenge { register, other }
            }
            "proxy" => self.proxy(r)?,
            "drop" => Action::Drop,
            _ => {
                let f = r
                    .function
                    .as_deref()
                    .ok_or("script needs function = \"NAME\"")?;
                let i = match self.functions.iter().position(|g| &**g == f) {
                    Some(i) => i,
                    None => {
                        self.functions.push(f.into());
                        self.functions.len() - 1
                    }
                };
                Action::Script(i)
            }
        })
    }

    /// Parameters of another action are a mistake worth reporting.
    fn check_parameters(&self, r: &RouteFile, allowed: &[&str]) -> Fallible<()> {
        let given = [
            ("code", r.code.is_some()),
            ("reason", r.reason.is_some()),
            ("headers", r.headers.is_some()),
            ("contacts", r.contacts.is_some()),
            ("realm", r.realm.is_some()),
            ("function", r.function.is_some()),
            ("to", r.to.is_some()),
            ("modifiers", modifiers_given(r)),
        ];
        match given.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            Some(("modifiers", _)) => Err("modifiers (strip, prefix, user, host, request-uri, add-headers, remove-headers, record-route, rewrite-contacts, media) apply to proxy only".into()),
            Some((key, _)) => Err(format!("{key} does not apply to action {:?}", r.action.as_deref().unwrap_or_default())),
            None => Ok(()),
        }
    }

    fn proxy(&self, r: &RouteFile) -> Fallible<Action> {
        // The extension point for the destination-group and registrar issues.
        if let Some(to) = r.to.as_deref().filter(|t| *t == "location") {
            return Err(format!(
                "to = {to:?}: the location service is not available yet"
            ));
        }
        let modifiers = modifiers(r)?;
        let to = match (&r.to, &modifiers.request_uri, &r.host) {
            (Some(to), _, _) if to.starts_with("group:") => Some(self.group(to)?),
            (Some(to), _, _) => Some(target(to)?),
            // Without `to`, a rewritten Request-URI is also where the request goes.
            (None, Some(uri), _) => Some(target(std::str::from_utf8(uri).unwrap_or_default())?),
            (None, None, Some(host)) => Some(target(&format!("sip:{host}"))?),
            (None, None, None) => None,
        };
        Ok(Action::Proxy { to, modifiers })
    }

    /// `to = "group:NAME"`: a group the configuration defines (RFC-free: load sharing).
    fn group(&self, to: &str) -> Fallible<Target> {
        let name = &to["group:".len()..];
        if !self.groups.iter().any(|g| g == name) {
            return Err(format!("to = {to:?}: no [[group]] is called {name:?}"));
        }
        Ok(Target {
            host: "".into(),
            port: None,
            transport: Transport::Udp,
            group: Some(name.into()),
        })
    }

    fn script(
        &self,
        s: &super::file::PolicySection,
        line: usize,
    ) -> Result<Option<ScriptSettings>, PolicyError> {
        let Some(script) = &s.script else {
            return Ok(None);
        };
        let path = self.path.parent().unwrap_or(Path::new(".")).join(script);
        let source = std::fs::read_to_string(&path)
            .map_err(|e| self.error(line, format!("script {}: {e}", path.display())))?;
        let fallback = match &s.script_fallback {
            Some(f) => match f.code {
                Some(code) if (300..=699).contains(&code) => OwnedReply::new(
                    code,
                    f.reason.as_deref().unwrap_or(default_reason(code)),
                    header_lines(f.headers.as_deref().unwrap_or_default())
                        .map_err(|m| self.error(line, m))?,
                ),
                _ => return Err(self.error(line, "script-fallback needs code = 300..699".into())),
            },
            None => OwnedReply::new(500, "Script Error", Vec::new()),
        };
        let settings = ScriptSettings {
            path,
            source,
            functions: self.functions.clone(),
            fallback,
            instructions: s
                .script_instructions
                .unwrap_or(DEFAULT_SCRIPT_INSTRUCTIONS)
                .max(1000),
            memory: s
                .script_memory
                .unwrap_or(DEFAULT_SCRIPT_MEMORY)
                .max(64 << 10),
        };
        super::lua::check(&settings).map_err(|(line, m)| PolicyError {
            file: settings.path.clone(),
            line,
            message: m,
        })?;
        Ok(Some(settings))
    }
}

fn modifiers_given(r: &RouteFile) -> bool {
    r.strip.is_some()
        || r.prefix.is_some()
        || r.user.is_some()
        || r.host.is_some()
        || r.request_uri.is_some()
        || r.add_headers.is_some()
        || r.remove_headers.is_some()
        || r.record_route.is_some()
        || r.rewrite_contacts.is_some()
        || r.media.is_some()
}

fn modifiers(r: &RouteFile) -> Fallible<OwnedModifiers> {
    let uri_text = |what: &str, s: &str| {
        if s.bytes()
            .any(|b| b <= b' ' || b == 0x7f || b == b'<' || b == b'>')
        {
            Err(format!(
                "{what} {s:?}: no spaces, controls or angle brackets"
            ))
        } else {
            Ok(s.as_bytes().to_vec().into_boxed_slice())
        }
    };
    let request_uri = match &r.request_uri {
        Some(u) if destination_of_uri(u).is_none() => {
            return Err(format!("request-uri {u:?}: expected a sip: URI"));
        }
        Some(u) => Some(uri_text("request-uri", u)?),
        None => None,
    };
    if request_uri.is_some()
        && (r.user.is_some() || r.host.is_some() || r.strip.is_some() || r.prefix.is_some())
    {
        return Err("request-uri replaces the whole URI: drop user, host, strip and prefix".into());
    }
    let remove = r
        .remove_headers
        .iter()
        .flatten()
        .map(|n| {
            let key = header_key(n)?;
            let essential = [
                HeaderName::Via,
                HeaderName::From,
                HeaderName::To,
                HeaderName::CallId,
                HeaderName::CSeq,
                HeaderName::MaxForwards,
                HeaderName::ContentLength,
                HeaderName::Route,
                HeaderName::RecordRoute,
            ];
            if essential.contains(&key.known) {
                return Err(format!(
                    "remove-headers: {n} is needed to route the request (RFC 3261 §16.6)"
                ));
            }
            Ok(key)
        })
        .collect::<Fallible<Vec<_>>>()?;
    Ok(OwnedModifiers {
        request_uri,
        strip: r.strip.unwrap_or(0),
        prefix: match &r.prefix {
            Some(p) => uri_text("prefix", p)?,
            None => Box::default(),
        },
        user: r.user.as_deref().map(|u| uri_text("user", u)).transpose()?,
        host: r.host.as_deref().map(|h| uri_text("host", h)).transpose()?,
        add_headers: header_lines(r.add_headers.as_deref().unwrap_or_default())?.into(),
        remove_headers: remove.into(),
        record_route: r.record_route,
        rewrite_contacts: r.rewrite_contacts,
        media: r.media,
    })
}

fn target(uri: &str) -> Fallible<Target> {
    let (host, port, transport) = destination_of_uri(uri)
        .ok_or(format!("{uri:?}: expected sip:HOST[:PORT][;transport=T]"))?;
    Ok(Target {
        host: host.into(),
        port,
        transport,
        group: None,
    })
}

fn cidr(text: &str) -> Fallible<Cidr> {
    Cidr::parse(text).ok_or(format!("{text:?}: expected an IP address or CIDR block"))
}

fn header_key(name: &str) -> Fallible<HeaderKey> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    {
        return Err(format!("header name {name:?} is not a token"));
    }
    Ok(HeaderKey::new(name))
}

/// `Name: value` lines, checked and rendered with CRLF.
pub(crate) fn header_lines(lines: &[String]) -> Fallible<Vec<u8>> {
    let mut out = Vec::new();
    for line in lines {
        push_header_line(line, &mut out)?;
    }
    Ok(out)
}

/// Checks one `Name: value` line and appends it with CRLF.
pub(crate) fn push_header_line(line: &str, out: &mut Vec<u8>) -> Fallible<()> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| format!("header {line:?}: expected \"Name: value\""))?;
    let name = name.trim_end();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    {
        return Err(format!("header name {name:?} is not a token"));
    }
    if value.contains(['\r', '\n']) {
        return Err(format!("header {line:?}: one line only"));
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.trim().as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// RFC 3261 §21 reason phrases for the codes policies use most.
pub(crate) fn default_reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        480 => "Temporarily Unavailable",
        484 => "Address Incomplete",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        _ => "Policy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> Result<Policy, PolicyError> {
        compile_str(text, Path::new("t.toml"), &CompileOptions::new(1))
    }

    fn error(text: &str) -> (usize, String) {
        let e = compile(text).expect_err("should not compile");
        assert_eq!(e.file, Path::new("t.toml"));
        (e.line, e.message)
    }

    #[test]
    fn no_policy_is_the_relay_guard_with_loopback_trusted() {
        let p = compile("listen = [\"udp:127.0.0.1:5060\"]\n").unwrap();
        assert!(p.is_empty());
        assert!(matches!(p.default, Action::RelayGuard(_)));
        assert_eq!(p.tables.addresses[0].blocks, loopback());
    }

    #[test]
    fn every_action_compiles() {
        let p = compile(
            "[[route]]\naction = \"accept\"\n\
             [[route]]\naction = \"reject\"\ncode = 503\nheaders = [\"Retry-After: 60\"]\n\
             [[route]]\naction = \"redirect\"\ncontacts = [\"sip:a@h\", { uri = \"sip:b@h\", q = 0.5 }]\n\
             [[route]]\naction = \"challenge\"\nrealm = \"r\"\n\
             [[route]]\naction = \"proxy\"\nto = \"sip:10.0.0.1:5070;transport=tcp\"\nstrip = 1\n\
             [[route]]\naction = \"drop\"\n",
        )
        .unwrap();
        let names: Vec<_> = p.rule_names().collect();
        assert_eq!(
            names,
            [
                "route-1", "route-2", "route-3", "route-4", "route-5", "route-6"
            ]
        );
        let Action::Reject(r) = &p.rules[1].action else {
            panic!()
        };
        assert_eq!(
            (r.code, &*r.reason, &*r.headers),
            (503, "Service Unavailable", &b"Retry-After: 60\r\n"[..])
        );
        let Action::Redirect(r) = &p.rules[2].action else {
            panic!()
        };
        assert_eq!(r.code, 302);
        assert_eq!(
            &*r.headers,
            b"Contact: <sip:a@h>\r\nContact: <sip:b@h>;q=0.5\r\n"
        );
        let Action::Proxy {
            to: Some(to),
            modifiers,
        } = &p.rules[4].action
        else {
            panic!()
        };
        assert_eq!(
            (&*to.host, to.port, to.transport),
            ("10.0.0.1", Some(5070), Transport::Tcp)
        );
        assert_eq!(modifiers.strip, 1);
    }

    #[test]
    fn a_rewritten_uri_or_host_is_also_the_destination() {
        let p = compile(
            "[[route]]\naction = \"proxy\"\nrequest-uri = \"sip:x@10.0.0.2:5090\"\n\
             [[route]]\naction = \"proxy\"\nhost = \"10.0.0.3:5091\"\n\
             [[route]]\naction = \"proxy\"\n",
        )
        .unwrap();
        let to = |i: usize| match &p.rules[i].action {
            Action::Proxy { to, .. } => to.as_ref().map(|t| (t.host.to_string(), t.port)),
            _ => panic!(),
        };
        assert_eq!(to(0), Some(("10.0.0.2".into(), Some(5090))));
        assert_eq!(to(1), Some(("10.0.0.3".into(), Some(5091))));
        assert_eq!(to(2), None, "as addressed");
    }

    #[test]
    fn errors_name_the_line() {
        let (line, message) = error("\n\n[[route]]\nname = \"x\"\naction = \"teleport\"\n");
        assert_eq!(line, 3);
        assert!(message.contains("unknown action \"teleport\""), "{message}");
        let (line, message) =
            error("[[route]]\naction = \"drop\"\n\n[[route]]\nactoin = \"drop\"\n");
        assert_eq!(line, 5);
        assert!(message.contains("unknown field `actoin`"), "{message}");
        let (_, message) = error("[[route]]\nuri-user = { regex = \"(\" }\naction = \"drop\"\n");
        assert!(message.contains("regex \"(\""), "{message}");
        let (_, message) = error("[[route]]\nsource = \"nowhere\"\naction = \"drop\"\n");
        assert!(message.contains("neither an address"), "{message}");
        let (_, message) = error("[[route]]\nuri-host = { set = \"nope\" }\naction = \"drop\"\n");
        assert!(
            message.contains("no domain set named \"nope\""),
            "{message}"
        );
        let (_, message) = error("[[route]]\naction = \"reject\"\ncode = 200\n");
        assert!(message.contains("expected 300-699"), "{message}");
        let (_, message) = error("[[route]]\naction = \"drop\"\nstrip = 2\n");
        assert!(message.contains("apply to proxy only"), "{message}");
        let (_, message) = error("[[route]]\naction = \"proxy\"\nremove-headers = [\"Via\"]\n");
        assert!(message.contains("needed to route"), "{message}");
        let (_, message) = error("[[route]]\naction = \"proxy\"\nto = \"group:core\"\n");
        assert!(message.contains("no [[group]] is called"), "{message}");
        let (_, message) = error("[[route]]\naction = \"proxy\"\nto = \"location\"\n");
        assert!(message.contains("not available yet"), "{message}");
        let (_, message) = error("[[route]]\naction = \"script\"\nfunction = \"f\"\n");
        assert!(message.contains("needs [policy] script"), "{message}");
        let (_, message) =
            error("[[route]]\naction = \"reject\"\nheaders = [\"Bad\\r\\nInjected: 1\"]\n");
        assert!(message.contains("not a token"), "{message}");
        let (line, message) = error("[policy]\ntrusted = [\"10.0.0.0/99\"]\n");
        assert_eq!(line, 1);
        assert!(message.contains("CIDR"), "{message}");
    }

    #[test]
    fn sets_are_addresses_or_domains() {
        let p = compile(
            "[sets]\npeers = [\"10.0.0.0/8\", \"192.0.2.1\"]\npartners = [\"Partner.example\"]\n\
             [[route]]\nsource = \"peers\"\nuri-host = { set = \"partners\" }\naction = \"drop\"\n",
        )
        .unwrap();
        assert_eq!(p.tables.addresses.len(), 2);
        assert_eq!(&*p.tables.domains[1].hosts[0], b"partner.example");
    }

    #[test]
    fn a_script_that_does_not_load_names_its_line() {
        let dir = std::env::temp_dir().join(format!("ferrovia-compile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bad.lua"), "function f(req)\n  return {\nend\n").unwrap();
        let text =
            "[policy]\nscript = \"bad.lua\"\n[[route]]\naction = \"script\"\nfunction = \"f\"\n";
        let e = compile_str(text, &dir.join("p.toml"), &CompileOptions::new(1)).unwrap_err();
        assert_eq!(e.file, dir.join("bad.lua"));
        assert_eq!(e.line, 3, "{e}");
        std::fs::write(dir.join("bad.lua"), "function g(req) end\n").unwrap();
        let e = compile_str(text, &dir.join("p.toml"), &CompileOptions::new(1)).unwrap_err();
        assert!(e.message.contains("no function \"f\""), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! What a rule does once it matches, compiled: every reply pre-rendered, every modifier
//! stored as the bytes the rewrite inserts, so turning an action into a [`Verdict`] borrows
//! and never formats.

use crate::sip::{Method, Transport};

use super::verdict::{Destination, Forward, HeaderKey, Modifiers, Reply, Verdict};

/// The kinds of action, for the per-action counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Accept,
    Reject,
    Proxy,
    Redirect,
    Challenge,
    Drop,
    Script,
    /// The request passed on as the proxy would route it without a policy.
    Pass,
    /// The built-in default refused to relay (403).
    RelayDenied,
    /// A script failed or hit a limit; its fallback answered.
    ScriptFallback,
}

impl ActionKind {
    pub const ALL: [ActionKind; 10] = [
        ActionKind::Accept,
        ActionKind::Reject,
        ActionKind::Proxy,
        ActionKind::Redirect,
        ActionKind::Challenge,
        ActionKind::Drop,
        ActionKind::Script,
        ActionKind::Pass,
        ActionKind::RelayDenied,
        ActionKind::ScriptFallback,
    ];

    /// The stable name used in counters and the `route` tool.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Accept => "accept",
            ActionKind::Reject => "reject",
            ActionKind::Proxy => "proxy",
            ActionKind::Redirect => "redirect",
            ActionKind::Challenge => "challenge",
            ActionKind::Drop => "drop",
            ActionKind::Script => "script",
            ActionKind::Pass => "pass",
            ActionKind::RelayDenied => "relay_denied",
            ActionKind::ScriptFallback => "script_fallback",
        }
    }
}

/// A destination as compiled (owned text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub host: Box<str>,
    pub port: Option<u16>,
    pub transport: Transport,
    /// `to = "group:NAME"`: the group's name (then `host` is unused).
    pub group: Option<Box<str>>,
}

impl Target {
    pub(crate) fn as_destination(&self) -> Destination<'_> {
        if let Some(group) = &self.group {
            return Destination::Group(group);
        }
        Destination::Host {
            host: &self.host,
            port: self.port,
            transport: self.transport,
        }
    }
}

/// Modifiers as compiled (owned bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OwnedModifiers {
    pub request_uri: Option<Box<[u8]>>,
    pub strip: u8,
    pub prefix: Box<[u8]>,
    pub user: Option<Box<[u8]>>,
    pub host: Option<Box<[u8]>>,
    pub add_headers: Box<[u8]>,
    pub remove_headers: Box<[HeaderKey]>,
    pub record_route: Option<bool>,
    pub rewrite_contacts: Option<bool>,
    pub media: Option<bool>,
}

impl OwnedModifiers {
    pub(crate) fn borrow(&self) -> Modifiers<'_> {
        Modifiers {
            request_uri: self.request_uri.as_deref(),
            strip: self.strip,
            prefix: &self.prefix,
            user: self.user.as_deref(),
            host: self.host.as_deref(),
            add_headers: &self.add_headers,
            remove_headers: &self.remove_headers,
            record_route: self.record_route,
            rewrite_contacts: self.rewrite_contacts,
            media: self.media,
        }
    }
}

/// A reply as compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedReply {
    pub code: u16,
    pub reason: Box<str>,
    pub headers: Box<[u8]>,
}

impl OwnedReply {
    pub(crate) fn new(code: u16, reason: &str, headers: Vec<u8>) -> OwnedReply {
        OwnedReply {
            code,
            reason: reason.into(),
            headers: headers.into(),
        }
    }

    pub(crate) fn borrow(&self) -> Reply<'_> {
        Reply {
            code: self.code,
            reason: &self.reason,
            headers: &self.headers,
        }
    }
}

/// A compiled action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Accept(OwnedReply),
    Reject(OwnedReply),
    Redirect(OwnedReply),
    /// RFC 3261 §22.1 / §22.3: 401 with WWW-Authenticate for REGISTER, 407 with
    /// Proxy-Authenticate otherwise. Credentials are checked by the auth issue's registrar;
    /// until then a challenged request cannot succeed.
    Challenge {
        register: OwnedReply,
        other: OwnedReply,
    },
    Proxy {
        to: Option<Target>,
        modifiers: OwnedModifiers,
    },
    Drop,
    /// Calls the script function with this index in the policy's function table.
    Script(usize),
    /// The built-in default: pass trusted, ours or in-dialog; else 403 (not an open relay).
    RelayGuard(OwnedReply),
}

impl Action {
    pub(crate) fn kind(&self) -> ActionKind {
        match self {
            Action::Accept(_) => ActionKind::Accept,
            Action::Reject(_) => ActionKind::Reject,
            Action::Redirect(_) => ActionKind::Redirect,
            Action::Challenge { .. } => ActionKind::Challenge,
            Action::Proxy { .. } => ActionKind::Proxy,
            Action::Drop => ActionKind::Drop,
            Action::Script(_) => ActionKind::Script,
            Action::RelayGuard(_) => ActionKind::RelayDenied,
        }
    }

    /// The verdict of an action that needs no script (`Script` and `RelayGuard` are decided
    /// by the engine).
    pub(crate) fn verdict(&self, method: Method) -> Verdict<'_> {
        match self {
            Action::Accept(r) | Action::Reject(r) | Action::Redirect(r) | Action::RelayGuard(r) => {
                Verdict::Reply(r.borrow())
            }
            Action::Challenge { register, other } => {
                Verdict::Reply(if method == Method::Register {
                    register.borrow()
                } else {
                    other.borrow()
                })
            }
            Action::Proxy { to, modifiers } => Verdict::Forward(Forward {
                to: to.as_ref().map(Target::as_destination),
                modifiers: modifiers.borrow(),
            }),
            Action::Drop | Action::Script(_) => Verdict::Drop,
        }
    }
}

/// `Contact: <uri>;q=0.5\r\n` lines for a redirect (RFC 3261 §21.3, §20.10).
pub(crate) fn contact_lines(contacts: &[(String, Option<f32>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (uri, q) in contacts {
        out.extend_from_slice(b"Contact: <");
        out.extend_from_slice(uri.as_bytes());
        out.push(b'>');
        if let Some(q) = q {
            out.extend_from_slice(
                format!(";q={q:.3}")
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The two challenges for `realm` (RFC 3261 §22.1, §22.3; RFC 2617 §3.2.1). The nonce is a
/// placeholder until the auth issue supplies verifiable ones.
pub(crate) fn challenges(realm: &str) -> (OwnedReply, OwnedReply) {
    let params = format!("Digest realm=\"{realm}\", nonce=\"ferrovia-no-auth-yet\", algorithm=MD5");
    (
        OwnedReply::new(
            401,
            "Unauthorized",
            format!("WWW-Authenticate: {params}\r\n").into_bytes(),
        ),
        OwnedReply::new(
            407,
            "Proxy Authentication Required",
            format!("Proxy-Authenticate: {params}\r\n").into_bytes(),
        ),
    )
}

/// Parses `sip:host[:port][;transport=t]` (a user part is allowed and ignored) into where a
/// request goes. Allocation-free, for scripts as well as the compiler.
pub fn destination_of_uri(uri: &str) -> Option<(&str, Option<u16>, Transport)> {
    let (rest, default) = if let Some(r) = uri.strip_prefix("sips:") {
        (r, Transport::Tls)
    } else {
        (uri.strip_prefix("sip:")?, Transport::Udp)
    };
    let rest = rest.split_once('@').map_or(rest, |(_, h)| h);
    let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
    let hostport = hostport.split_once('?').map_or(hostport, |(h, _)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (ip, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (&hostport[..ip.len() + 2], port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p.parse().ok()?)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || port == Some(0) {
        return None;
    }
    let mut transport = default;
    for param in params.split(';') {
        if let Some(t) = param.strip_prefix("transport=") {
            transport = Transport::from_token(t.as_bytes())?;
        }
    }
    Some((host, port, transport))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_from_uris() {
        assert_eq!(
            destination_of_uri("sip:127.0.0.1:5070"),
            Some(("127.0.0.1", Some(5070), Transport::Udp))
        );
        assert_eq!(
            destination_of_uri("sip:someone@127.0.0.1:5090;transport=tcp"),
            Some(("127.0.0.1", Some(5090), Transport::Tcp))
        );
        assert_eq!(
            destination_of_uri("sips:[::1]:5061"),
            Some(("[::1]", Some(5061), Transport::Tls))
        );
        assert_eq!(
            destination_of_uri("sip:core.example"),
            Some(("core.example", None, Transport::Udp))
        );
        for bad in [
            "tel:+1",
            "sip:",
            "sip:h:0",
            "sip:h:x",
            "sip:h;transport=pigeon",
        ] {
            assert_eq!(destination_of_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn redirect_contacts_render_with_q() {
        let lines = contact_lines(&[
            ("sip:moved@127.0.0.1:5091".into(), None),
            ("sip:b@h".into(), Some(0.5)),
        ]);
        assert_eq!(
            String::from_utf8(lines).unwrap(),
            "Contact: <sip:moved@127.0.0.1:5091>\r\nContact: <sip:b@h>;q=0.5\r\n"
        );
    }

    #[test]
    fn challenge_depends_on_the_method() {
        let (register, other) = challenges("edge.example");
        let action = Action::Challenge { register, other };
        let Verdict::Reply(r) = action.verdict(Method::Register) else {
            panic!()
        };
        assert_eq!(r.code, 401);
        assert!(
            r.headers
                .starts_with(b"WWW-Authenticate: Digest realm=\"edge.example\"")
        );
        let Verdict::Reply(r) = action.verdict(Method::Invite) else {
            panic!()
        };
        assert_eq!(r.code, 407);
        assert!(r.headers.starts_with(b"Proxy-Authenticate:"));
    }

    #[test]
    fn proxy_borrows_its_modifiers() {
        let action = Action::Proxy {
            to: Some(Target {
                host: "127.0.0.1".into(),
                port: Some(5070),
                transport: Transport::Udp,
                group: None,
            }),
            modifiers: OwnedModifiers {
                strip: 2,
                add_headers: b"X-A: 1\r\n".to_vec().into(),
                ..OwnedModifiers::default()
            },
        };
        let Verdict::Forward(f) = action.verdict(Method::Invite) else {
            panic!()
        };
        assert_eq!(f.modifiers.strip, 2);
        assert!(f.modifiers.touches_request_uri());
        assert_eq!(
            f.to,
            Some(Destination::Host {
                host: "127.0.0.1",
                port: Some(5070),
                transport: Transport::Udp
            })
        );
    }
}

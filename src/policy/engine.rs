//! One worker's policy engine: the compiled rules read through the shared handle, the
//! worker's regex caches and its Lua VM. The [`Router`] the runtime hands the core.

use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};
use log::warn;

use super::action::{Action, ActionKind};
use super::lua::LuaVm;
use super::rules::Policy;
use super::shared::PolicyHandle;
use super::text::Scratch;
use super::verdict::{Router, Verdict};
use super::view::RequestView;

/// Script errors logged in full before the log thins out to one in a thousand.
const LOGGED_ERRORS: u64 = 10;

/// What the last request matched (for the `route` tool and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The matching rule's name; `None` when the default decided.
    pub rule: Option<String>,
    pub action: ActionKind,
    /// The script's error when a script action fell back.
    pub script_error: Option<String>,
}

/// A worker's engine. Made on the worker's thread (the Lua VM stays there).
pub struct Engine {
    handle: Arc<PolicyHandle>,
    cache: Cache<Arc<ArcSwap<Policy>>, Arc<Policy>>,
    /// The policy `scratch` and `lua` were built for.
    built_for: *const Policy,
    scratch: Scratch,
    lua: Option<LuaVm>,
    worker: usize,
    errors: u64,
    last: Option<(Option<usize>, ActionKind)>,
    last_error: Option<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("worker", &self.worker)
            .finish()
    }
}

impl Engine {
    /// Worker `worker`'s engine over `handle`.
    pub fn new(handle: Arc<PolicyHandle>, worker: usize) -> Engine {
        let cache = Cache::new(Arc::clone(&handle.current));
        let mut engine = Engine {
            handle,
            cache,
            built_for: std::ptr::null(),
            scratch: Scratch::default(),
            lua: None,
            worker,
            errors: 0,
            last: None,
            last_error: None,
        };
        engine.refresh();
        engine
    }

    /// Rebuilds the regex caches and the Lua VM when the policy changed: once per reload.
    fn refresh(&mut self) {
        let policy = Arc::clone(self.cache.load());
        if Arc::as_ptr(&policy) == self.built_for {
            return;
        }
        self.scratch = Scratch::for_tables(&policy.tables);
        self.lua = policy.script.as_ref().and_then(|s| match LuaVm::new(s) {
            Ok(vm) => Some(vm),
            Err(e) => {
                warn!(
                    "{}:{}: {}",
                    s.path.display(),
                    e.line.unwrap_or(0),
                    e.message
                );
                None
            }
        });
        self.built_for = Arc::as_ptr(&policy);
    }

    /// What the last request matched.
    pub fn last_decision(&mut self) -> Option<Decision> {
        let (rule, action) = self.last?;
        let policy = self.cache.load();
        Some(Decision {
            rule: rule
                .and_then(|i| policy.rules.get(i))
                .map(|r| r.name.to_string()),
            action,
            script_error: self.last_error.clone(),
        })
    }

    /// The shared handle (counters, reload).
    pub fn handle(&self) -> &Arc<PolicyHandle> {
        &self.handle
    }
}

impl Router for Engine {
    fn route<'r>(&'r mut self, view: &RequestView<'_>) -> Verdict<'r> {
        if !std::ptr::eq(Arc::as_ptr(self.cache.load()), self.built_for) {
            self.refresh();
        }
        let policy: &Policy = self.cache.load();
        let matched = policy.first_match(view, &mut self.scratch);
        let action = match matched {
            Some(i) => {
                policy.hits.hit(self.worker, i);
                &policy.rules[i].action
            }
            None => &policy.default,
        };
        let (kind, verdict) = match action {
            Action::RelayGuard(_) if policy.may_relay(view) => (ActionKind::Pass, Verdict::Pass),
            Action::Script(f) => {
                let outcome = match self.lua.as_mut() {
                    Some(vm) => vm.call(*f, view),
                    None => Err(super::lua::ScriptError {
                        line: None,
                        message: "the script did not load".into(),
                    }),
                };
                match outcome {
                    Ok(v) => {
                        self.last_error = None;
                        (ActionKind::Script, v)
                    }
                    Err(e) => {
                        self.handle.count_script_error(self.worker);
                        self.errors += 1;
                        let script = policy.script.as_ref();
                        if self.errors <= LOGGED_ERRORS || self.errors.is_multiple_of(1000) {
                            let path =
                                script.map_or("script".into(), |s| s.path.display().to_string());
                            warn!(
                                "{path}:{}: {} ({} script errors on this worker)",
                                e.line.unwrap_or(0),
                                e.message,
                                self.errors
                            );
                        }
                        self.last_error = Some(e.message);
                        let reply = match script {
                            Some(s) => Verdict::Reply(s.fallback.borrow()),
                            None => Verdict::Reply(super::verdict::Reply {
                                code: 500,
                                reason: "Script Error",
                                headers: b"",
                            }),
                        };
                        (ActionKind::ScriptFallback, reply)
                    }
                }
            }
            other => (other.kind(), other.verdict(view.method())),
        };
        self.handle.count(self.worker, kind);
        self.last = Some((matched, kind));
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{CompileOptions, compile_str, relay_guard};
    use crate::sip::{Message, Transport};
    use std::path::Path;

    fn request(uri: &str, to_tag: &str) -> Vec<u8> {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
From: <sip:a@a.example>;tag=1\r\nTo: <{uri}>{to_tag}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"
        )
        .into_bytes()
    }

    fn decide(engine: &mut Engine, raw: &[u8], source: &str, follows: bool) -> String {
        let msg = Message::scan(raw, false).unwrap();
        let view = RequestView::new(
            &msg,
            source.parse().unwrap(),
            "127.0.0.1:5060".parse().unwrap(),
            Transport::Udp,
        )
        .with_routing(false, follows);
        format!("{:?}", engine.route(&view))
    }

    #[test]
    fn the_relay_guard_passes_trusted_ours_and_dialogs_and_refuses_the_rest() {
        let text = "[policy]\ndomains = [\"edge.example\"]\ntrusted = [\"10.0.0.0/8\"]\n";
        let policy =
            compile_str(text, Path::new("p.toml"), &CompileOptions { workers: 1 }).unwrap();
        let mut engine = Engine::new(PolicyHandle::new(policy, 1), 0);
        let foreign = request("sip:x@far.example", "");
        assert_eq!(
            decide(&mut engine, &foreign, "10.1.2.3:5060", false),
            "Pass"
        );
        assert!(decide(&mut engine, &foreign, "192.0.2.1:5060", false).contains("code: 403"));
        let ours = request("sip:x@EDGE.example", "");
        assert_eq!(decide(&mut engine, &ours, "192.0.2.1:5060", false), "Pass");
        let dialog = request("sip:x@far.example", ";tag=2");
        assert_eq!(decide(&mut engine, &dialog, "192.0.2.1:5060", true), "Pass");
        let c = engine.handle().counters();
        let count = |k: &str| c.actions.iter().find(|(n, _)| n == k).unwrap().1;
        assert_eq!((count("pass"), count("relay_denied")), (3, 1));
    }

    #[test]
    fn loopback_is_trusted_without_config() {
        let mut engine = Engine::new(
            PolicyHandle::new(relay_guard(&CompileOptions { workers: 1 }), 1),
            0,
        );
        let foreign = request("sip:x@far.example", "");
        assert_eq!(
            decide(&mut engine, &foreign, "127.0.0.1:5060", false),
            "Pass"
        );
        assert!(decide(&mut engine, &foreign, "192.0.2.1:5060", false).contains("code: 403"));
    }

    #[test]
    fn dialogs_following_our_record_route_see_only_in_dialog_rules() {
        let text = "[[route]]\nname = \"all\"\naction = \"reject\"\ncode = 404\n\
                    [[route]]\nname = \"dialogs\"\nin-dialog = true\nmethod = \"BYE\"\naction = \"drop\"\n";
        let policy =
            compile_str(text, Path::new("p.toml"), &CompileOptions { workers: 1 }).unwrap();
        let mut engine = Engine::new(PolicyHandle::new(policy, 1), 0);
        let dialog = request("sip:x@far.example", ";tag=2");
        assert_eq!(
            decide(&mut engine, &dialog, "127.0.0.1:5060", true),
            "Pass",
            "no in-dialog rule matched an INVITE"
        );
        let bye = String::from_utf8(dialog).unwrap().replace("INVITE", "BYE");
        assert_eq!(
            decide(&mut engine, bye.as_bytes(), "127.0.0.1:5060", true),
            "Drop"
        );
        assert!(decide(&mut engine, bye.as_bytes(), "127.0.0.1:5060", false).contains("404"));
        assert_eq!(engine.last_decision().unwrap().rule.as_deref(), Some("all"));
    }

    #[test]
    fn a_swapped_policy_applies_at_the_next_request() {
        let options = CompileOptions { workers: 1 };
        let first = compile_str(
            "[[route]]\nname = \"a\"\naction = \"drop\"\n",
            Path::new("p"),
            &options,
        )
        .unwrap();
        let handle = PolicyHandle::new(first, 1);
        let mut engine = Engine::new(Arc::clone(&handle), 0);
        let raw = request("sip:x@far.example", "");
        assert_eq!(decide(&mut engine, &raw, "127.0.0.1:1", false), "Drop");
        let second = compile_str(
            "[[route]]\nname = \"b\"\naction = \"accept\"\n",
            Path::new("p"),
            &options,
        )
        .unwrap();
        handle.replace(second);
        assert!(decide(&mut engine, &raw, "127.0.0.1:1", false).contains("code: 200"));
        let again = compile_str(
            "[[route]]\nname = \"a\"\naction = \"drop\"\n",
            Path::new("p"),
            &options,
        )
        .unwrap();
        handle.replace(again);
        decide(&mut engine, &raw, "127.0.0.1:1", false);
        let c = handle.counters();
        assert_eq!(
            c.rules,
            vec![("a".to_string(), 2), ("b".to_string(), 1)],
            "hits survive reloads by name"
        );
        assert_eq!(c.reloads_ok, 2);
    }
}

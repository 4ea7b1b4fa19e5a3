//! A compiled policy: rules in order, the tables they refer to, the default, the script
//! settings, and the per-rule hit counters. Shared read-only by every worker (swapped whole
//! on reload); evaluation needs only the worker's [`Scratch`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::action::{Action, OwnedReply};
use super::predicate::Predicate;
use super::text::{Scratch, Tables, TextContext};
use super::view::RequestView;

/// One rule: a name for counters and logs, where it was written, what it tests, what it does.
#[derive(Debug)]
pub(crate) struct Rule {
    pub name: Box<str>,
    pub line: usize,
    pub predicates: Vec<Predicate>,
    pub action: Action,
    /// Says `in-dialog = true`: applies to requests following our Record-Route too.
    pub for_dialogs: bool,
}

/// The Lua side of a policy.
#[derive(Debug)]
pub(crate) struct ScriptSettings {
    pub path: PathBuf,
    pub source: String,
    /// Functions the rules call, by index.
    pub functions: Vec<Box<str>>,
    /// Answer when a call fails or hits a limit (default 500).
    pub fallback: OwnedReply,
    /// VM instructions one call may run.
    pub instructions: u32,
    /// Bytes one call may add to the VM's memory.
    pub memory: usize,
}

/// Hit counters for each rule, one padded row per worker so workers never share a line.
#[derive(Debug)]
pub(crate) struct RuleHits {
    stride: usize,
    workers: usize,
    cells: Box<[AtomicU64]>,
}

impl RuleHits {
    pub(crate) fn new(rules: usize, workers: usize) -> RuleHits {
        let stride = rules.div_ceil(8).max(1) * 8;
        let workers = workers.max(1);
        RuleHits {
            stride,
            workers,
            cells: (0..stride * workers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn hit(&self, worker: usize, rule: usize) {
        let i = (worker % self.workers) * self.stride + rule;
        if let Some(c) = self.cells.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn total(&self, rule: usize) -> u64 {
        (0..self.workers)
            .filter_map(|w| self.cells.get(w * self.stride + rule))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    pub(crate) rules: Vec<Rule>,
    pub(crate) tables: Tables,
    /// When no rule matches.
    pub(crate) default: Action,
    pub(crate) script: Option<ScriptSettings>,
    pub(crate) hits: RuleHits,
    /// Where it came from (for logs and the `route` tool).
    pub(crate) origin: PathBuf,
}

impl Policy {
    /// The index of the first rule matching `view`, if any. A request following this
    /// proxy's Record-Route is tested only against rules that say `in-dialog = true`.
    pub(crate) fn first_match(
        &self,
        view: &RequestView<'_>,
        scratch: &mut Scratch,
    ) -> Option<usize> {
        let mut cx = TextContext {
            tables: &self.tables,
            scratch,
            to_me: view.to_me,
        };
        self.rules.iter().position(|rule| {
            (rule.for_dialogs || !view.follows_record_route)
                && rule.predicates.iter().all(|p| p.holds(view, &mut cx))
        })
    }

    /// The built-in default's test (RFC 3261 §16.3 leaves relaying to local policy; an
    /// open relay is the first thing scanners look for): trusted source, a domain of ours or
    /// the proxy itself, or a request following our Record-Route.
    pub(crate) fn may_relay(&self, view: &RequestView<'_>) -> bool {
        let ip = view.source.ip();
        let trusted = self
            .tables
            .addresses
            .first()
            .is_some_and(|s| s.blocks.iter().any(|b| b.contains(ip)));
        let ours = view.to_me
            || self.tables.domains.first().is_some_and(|d| {
                d.hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(view.uri_host()))
            });
        trusted || ours || view.follows_record_route
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules' names, in order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| &*r.name)
    }

    /// Each rule's name and its hits under this policy.
    pub fn rule_hits(&self) -> Vec<(String, u64)> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.to_string(), self.hits.total(i)))
            .collect()
    }

    /// The file the policy was compiled from.
    pub fn origin(&self) -> &std::path::Path {
        &self.origin
    }

    /// Whether the policy calls a script.
    pub fn has_script(&self) -> bool {
        self.script.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_per_worker_and_summed() {
        let hits = RuleHits::new(3, 2);
        hits.hit(0, 1);
        hits.hit(1, 1);
        hits.hit(5, 2);
        hits.hit(0, 99); // out of range: ignored, never a panic
        assert_eq!(hits.total(1), 2);
        assert_eq!(hits.total(2), 1);
        assert_eq!(hits.total(0), 0);
    }
}

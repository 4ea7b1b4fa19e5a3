//! The policy every worker reads: one [`Policy`] behind an `ArcSwap`, replaced whole by a
//! reload (compiled off the hot path), and the counters that outlive a reload.
//!
//! A worker reads the current policy through an `arc_swap::Cache` (one atomic load per
//! message, no lock, no reference count change unless the policy changed), so a reload
//! reaches every worker at its next message and no message waits or is lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::action::ActionKind;
use super::rules::Policy;

/// Counters per worker row: one per action kind and script errors.
const ROW: usize = 16;
const SCRIPT_ERRORS: usize = ActionKind::ALL.len();

/// The running policy and its counters, shared by the workers, the reloader and the stats.
#[derive(Debug)]
pub struct PolicyHandle {
    pub(crate) current: Arc<ArcSwap<Policy>>,
    workers: usize,
    cells: Box<[AtomicU64]>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    /// Hits of rules counted under policies since replaced, by rule name.
    retired: Mutex<BTreeMap<String, u64>>,
}

/// What the policy counted, for `/metrics`, `/stats` and `ferrovia stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyCounters {
    /// Hits per rule name (the current rules first, in order, then retired names).
    pub rules: Vec<(String, u64)>,
    /// Decisions per action kind.
    pub actions: Vec<(String, u64)>,
    pub script_errors: u64,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

impl PolicyCounters {
    /// The rule and the action counted since `before` (one evaluation apart): what decided.
    pub fn decided_since(&self, before: &PolicyCounters) -> (Option<String>, Option<String>) {
        let changed = |b: &[(String, u64)], a: &[(String, u64)]| {
            a.iter()
                .find(|(name, n)| {
                    b.iter()
                        .find(|(m, _)| m == name)
                        .map_or(*n > 0, |(_, k)| k != n)
                })
                .map(|(name, _)| name.clone())
        };
        (
            changed(&before.rules, &self.rules),
            changed(&before.actions, &self.actions),
        )
    }
}

impl PolicyHandle {
    /// Starts with `policy`, counting for `workers` workers.
    pub fn new(policy: Policy, workers: usize) -> Arc<PolicyHandle> {
        let workers = workers.max(1);
        Arc::new(PolicyHandle {
            current: Arc::new(ArcSwap::from_pointee(policy)),
            workers,
            cells: (0..workers * ROW).map(|_| AtomicU64::new(0)).collect(),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            retired: Mutex::new(BTreeMap::new()),
        })
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Workers the counters have rows for.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Puts `policy` in force for every worker's next message; counts a good reload.
    pub fn replace(&self, policy: Policy) {
        let old = self.current.swap(Arc::new(policy));
        // Hits counted by the old rules after this point are lost (a handful at most).
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        for (name, hits) in old.rule_hits() {
            *retired.entry(name).or_default() += hits;
        }
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a reload whose file did not compile (the old policy stays).
    pub fn reload_failed(&self) {
        self.reloads_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count(&self, worker: usize, kind: ActionKind) {
        let i = (worker % self.workers) * ROW + kind as usize;
        if let Some(c) = self.cells.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn count_script_error(&self, worker: usize) {
        if let Some(c) = self
            .cells
            .get((worker % self.workers) * ROW + SCRIPT_ERRORS)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn total(&self, column: usize) -> u64 {
        (0..self.workers)
            .filter_map(|w| self.cells.get(w * ROW + column))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Everything counted so far.
    pub fn counters(&self) -> PolicyCounters {
        let mut rules = self.current().rule_hits();
        let retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        for (name, hits) in retired.iter() {
            match rules.iter_mut().find(|(n, _)| n == name) {
                Some((_, h)) => *h += hits,
                None => rules.push((name.clone(), *hits)),
            }
        }
        PolicyCounters {
            rules,
            actions: ActionKind::ALL
                .iter()
                .map(|k| (k.name().to_owned(), self.total(*k as usize)))
                .collect(),
            script_errors: self.total(SCRIPT_ERRORS),
            reloads_ok: self.reloads_ok.load(Ordering::Relaxed),
            reloads_failed: self.reloads_failed.load(Ordering::Relaxed),
        }
    }
}

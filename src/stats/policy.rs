//! The routing policy in the stats: its counters in every snapshot (`/metrics`, `/stats`,
//! `ferrovia stats`) and `POST /reload` on the metrics listener.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use crate::policy::{PolicyCounters, PolicyHandle};

/// Re-reads and recompiles the policy; `Ok` says what is now in force, `Err` why the old
/// policy stays (file:line).
pub type ReloadFn = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// What the stats thread keeps of the policy.
#[derive(Clone)]
pub(super) struct PolicyHooks {
    pub handle: Arc<PolicyHandle>,
    pub reload: ReloadFn,
}

impl fmt::Debug for PolicyHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyHooks").finish_non_exhaustive()
    }
}

/// Prometheus families of the policy counters.
pub(super) fn prometheus(out: &mut String, p: &PolicyCounters) {
    let family = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    };
    family(
        out,
        "ferrovia_policy_rule_hits_total",
        "Requests each policy rule matched.",
    );
    for (rule, n) in &p.rules {
        let _ = writeln!(
            out,
            "ferrovia_policy_rule_hits_total{{rule=\"{}\"}} {n}",
            escape(rule)
        );
    }
    family(
        out,
        "ferrovia_policy_actions_total",
        "Policy decisions by action.",
    );
    for (action, n) in &p.actions {
        let _ = writeln!(
            out,
            "ferrovia_policy_actions_total{{action=\"{action}\"}} {n}"
        );
    }
    family(
        out,
        "ferrovia_policy_script_errors_total",
        "Script calls that failed or hit a limit.",
    );
    let _ = writeln!(
        out,
        "ferrovia_policy_script_errors_total {}",
        p.script_errors
    );
    family(
        out,
        "ferrovia_policy_reloads_total",
        "Policy reloads by result.",
    );
    let _ = writeln!(
        out,
        "ferrovia_policy_reloads_total{{result=\"ok\"}} {}",
        p.reloads_ok
    );
    let _ = writeln!(
        out,
        "ferrovia_policy_reloads_total{{result=\"failed\"}} {}",
        p.reloads_failed
    );
}

/// Label values escape backslash, quote and newline (Prometheus text format).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The summary lines (`ferrovia stats` and the exit report).
pub(super) fn summary(f: &mut fmt::Formatter<'_>, p: &PolicyCounters) -> fmt::Result {
    for (rule, n) in &p.rules {
        writeln!(f, "{:<28}{n:>12}", format!("rule {rule}"))?;
    }
    for (action, n) in p.actions.iter().filter(|(_, n)| *n > 0) {
        writeln!(
            f,
            "{:<28}{n:>12}",
            format!("policy {}", action.replace('_', " "))
        )?;
    }
    writeln!(f, "{:<28}{:>12}", "script errors", p.script_errors)?;
    writeln!(f, "{:<28}{:>12}", "policy reloads ok", p.reloads_ok)?;
    writeln!(f, "{:<28}{:>12}", "policy reloads failed", p.reloads_failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_names_rules_and_actions() {
        let p = PolicyCounters {
            rules: vec![("a\"b".into(), 3)],
            actions: vec![("reject".into(), 2)],
            script_errors: 1,
            reloads_ok: 4,
            reloads_failed: 5,
        };
        let mut out = String::new();
        prometheus(&mut out, &p);
        assert!(out.contains("ferrovia_policy_rule_hits_total{rule=\"a\\\"b\"} 3\n"));
        assert!(out.contains("ferrovia_policy_actions_total{action=\"reject\"} 2\n"));
        assert!(out.contains("ferrovia_policy_script_errors_total 1\n"));
        assert!(out.contains("ferrovia_policy_reloads_total{result=\"failed\"} 5\n"));
    }
}

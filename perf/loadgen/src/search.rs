//! The zero-loss rate search: the highest offered rate a forwarder sustains without losing a
//! single transaction (or at most `loss_tolerance` of them).
//!
//! Method: run a bounded step at `start_rate`; double the rate while steps pass, then bisect
//! between the highest passing and the lowest failing rate until they are within `precision` of
//! each other or `max_steps` have run. A step passes when its loss is within the tolerance *and*
//! the load generator kept to the asked rate; a rate that fails is tried again up to `retries`
//! times and passes if any try does (on a shared machine one scheduling hiccup loses requests
//! without saying anything about the forwarder). When the generator fell behind at the lowest
//! failing rate, the result is reported as limited by the generator, not by the forwarder.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::sender::{SendPlan, SendReport, Sender};

#[derive(Clone, Copy, Debug)]
pub struct SearchConfig {
    pub start_rate: u64,
    pub max_rate: u64,
    pub max_steps: u32,
    /// Stop bisecting when (fail - pass) <= precision × fail.
    pub precision: f64,
    /// Fraction of sent requests that may be lost in a passing step (0: none).
    pub loss_tolerance: f64,
    /// A failing rate is tried again this many times (a busy machine's hiccup is not a limit).
    pub retries: u32,
    /// Quiet time between steps, for the forwarder's queues to empty.
    pub settle: Duration,
}

/// Why the search stopped where it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Steps above the result lost transactions.
    Loss,
    /// The load generator could not offer more.
    Generator,
    /// The configured maximum rate passed.
    MaxRate,
    /// Steps ran out before pass and fail met, or the search was stopped.
    Steps,
}

/// One step's verdict.
#[derive(Clone, Debug)]
pub struct Step {
    pub rate: u64,
    pub passed: bool,
    pub report: SendReport,
}

#[derive(Clone, Debug)]
pub struct SearchReport {
    /// The highest passing rate (0 if none passed).
    pub best_rate: u64,
    pub limit: Limit,
    pub steps: Vec<Step>,
}

impl SearchReport {
    pub fn best(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|s| s.passed)
            .max_by_key(|s| s.rate)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let best = self.best().map(|s| s.report.to_json());
        serde_json::json!({
            "mode": "search", "best_rate": self.best_rate,
            "limit": format!("{:?}", self.limit).to_lowercase(),
            "steps": self.steps.iter().map(|s| serde_json::json!({
                "rate": s.rate, "passed": s.passed, "sent": s.report.sent,
                "lost": s.report.lost, "kept_up": s.report.kept_up(),
                "offered_per_s": s.report.offered_per_sec().round(),
            })).collect::<Vec<_>>(),
            "best": best,
        })
    }
}

/// Where the next step goes, given what passed and failed so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bracket {
    pub pass: Option<u64>,
    pub fail: Option<u64>,
}

impl Bracket {
    /// The next rate to try, or `None` when the search is done.
    pub fn next_rate(&self, config: &SearchConfig) -> Option<u64> {
        match (self.pass, self.fail) {
            (None, None) => Some(config.start_rate.max(1)),
            (Some(pass), None) if pass >= config.max_rate => None,
            (Some(pass), None) => Some(pass.saturating_mul(2).min(config.max_rate)),
            (None, Some(fail)) => (fail >= 200).then_some(fail / 2),
            (Some(pass), Some(fail)) => {
                let close = (fail - pass) as f64 <= config.precision * fail as f64;
                (!close && fail > pass + 1).then_some(pass + (fail - pass) / 2)
            }
        }
    }

    pub fn record(&mut self, rate: u64, passed: bool) {
        if passed {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
    }
}

/// Whether a step passed: loss within the tolerance and the generator kept up.
pub fn passed(report: &SendReport, config: &SearchConfig) -> bool {
    let allowed = (report.sent as f64 * config.loss_tolerance).floor() as u64;
    report.kept_up() && report.lost <= allowed && report.sent > 0
}

/// Runs the search; `step_plan` is each step's plan, its rate and count set per step.
pub fn search(
    sender: &mut Sender,
    step_plan: &SendPlan,
    config: &SearchConfig,
    stop: &AtomicBool,
    mut on_step: impl FnMut(&Step),
) -> io::Result<SearchReport> {
    let mut bracket = Bracket::default();
    let mut steps: Vec<Step> = Vec::new();
    let mut rates_tried = 0;
    while rates_tried < config.max_steps && !stop.load(Ordering::Relaxed) {
        let Some(rate) = bracket.next_rate(config) else {
            break;
        };
        rates_tried += 1;
        let passed = try_rate(
            sender,
            step_plan,
            rate,
            config,
            stop,
            &mut steps,
            &mut on_step,
        )?;
        bracket.record(rate, passed);
    }
    let generator_limited = generator_lagged_at(&steps, bracket.fail);
    let limit = limit(&bracket, config, generator_limited, stop);
    Ok(SearchReport {
        best_rate: bracket.pass.unwrap_or(0),
        limit,
        steps,
    })
}

/// Whether every try at the lowest failing rate fell behind the asked rate.
fn generator_lagged_at(steps: &[Step], fail: Option<u64>) -> bool {
    let mut tries = steps.iter().filter(|s| Some(s.rate) == fail).peekable();
    tries.peek().is_some() && tries.all(|s| !s.report.kept_up())
}

/// Runs `rate` up to `1 + retries` times; it passes as soon as one try passes.
fn try_rate(
    sender: &mut Sender,
    step_plan: &SendPlan,
    rate: u64,
    config: &SearchConfig,
    stop: &AtomicBool,
    steps: &mut Vec<Step>,
    on_step: &mut impl FnMut(&Step),
) -> io::Result<bool> {
    for _ in 0..=config.retries {
        let step = run_step(sender, step_plan, rate, config, stop)?;
        on_step(&step);
        let passed = step.passed;
        steps.push(step);
        std::thread::sleep(config.settle);
        if passed || stop.load(Ordering::Relaxed) {
            return Ok(passed);
        }
    }
    Ok(false)
}

fn run_step(
    sender: &mut Sender,
    step_plan: &SendPlan,
    rate: u64,
    config: &SearchConfig,
    stop: &AtomicBool,
) -> io::Result<Step> {
    let count = (rate as f64 * step_plan.duration.as_secs_f64()).ceil() as u64;
    let plan = SendPlan {
        rate,
        count: count.max(1),
        ..*step_plan
    };
    let report = sender.run(&plan, stop)?;
    Ok(Step {
        rate,
        passed: passed(&report, config),
        report,
    })
}

fn limit(bracket: &Bracket, config: &SearchConfig, generator: bool, stop: &AtomicBool) -> Limit {
    if generator {
        Limit::Generator
    } else if bracket.pass.is_some_and(|p| p >= config.max_rate) {
        Limit::MaxRate
    } else if bracket.next_rate(config).is_none() && !stop.load(Ordering::Relaxed) {
        Limit::Loss
    } else {
        Limit::Steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SearchConfig {
        SearchConfig {
            start_rate: 10_000,
            max_rate: 1_000_000,
            max_steps: 20,
            precision: 0.05,
            loss_tolerance: 0.0,
            retries: 1,
            settle: Duration::ZERO,
        }
    }

    /// Runs the bracket against a forwarder that loses above `capacity`.
    fn simulate(capacity: u64, config: &SearchConfig) -> (Bracket, Vec<u64>) {
        let mut bracket = Bracket::default();
        let mut tried = Vec::new();
        while let Some(rate) = bracket.next_rate(config) {
            tried.push(rate);
            bracket.record(rate, rate <= capacity);
            assert!(tried.len() < 50, "does not converge: {tried:?}");
        }
        (bracket, tried)
    }

    #[test]
    fn doubles_then_bisects_to_within_the_precision() {
        let (bracket, tried) = simulate(123_000, &config());
        assert_eq!(&tried[..5], [10_000, 20_000, 40_000, 80_000, 160_000]);
        let (pass, fail) = (bracket.pass.unwrap(), bracket.fail.unwrap());
        assert!(pass <= 123_000 && fail > 123_000);
        assert!((fail - pass) as f64 <= 0.05 * fail as f64);
    }

    #[test]
    fn halves_when_even_the_start_rate_fails() {
        let (bracket, tried) = simulate(3_000, &config());
        assert_eq!(&tried[..3], [10_000, 5_000, 2_500]);
        assert!(bracket.pass.unwrap() <= 3_000);
    }

    #[test]
    fn stops_at_the_maximum_rate() {
        let (bracket, tried) = simulate(u64::MAX, &config());
        assert_eq!(bracket.pass, Some(1_000_000));
        assert_eq!(*tried.last().unwrap(), 1_000_000);
    }

    #[test]
    fn gives_up_when_nothing_passes() {
        let (bracket, _) = simulate(0, &config());
        assert_eq!(bracket.pass, None);
    }
}

//! Programmable routing: a policy of rules compiled from the TOML config, Lua scripts, and
//! the [`Router`] trait the core calls for every request the policy applies to.
//!
//! - [`compile_file`] turns `[policy]`, `[sets]` and `[[route]]` into a [`Policy`]: rules in
//!   order, first match wins; every error names its file and line.
//! - [`PolicyHandle`] holds the policy in force for every worker and swaps it whole on
//!   reload; it also keeps the counters (hits per rule and per action, script errors,
//!   reloads).
//! - [`Engine`] is one worker's router: the shared policy, the worker's regex caches and its
//!   Lua VM ([`lua`]). Evaluating rules reads offsets of the scanned message and allocates
//!   nothing.
//! - [`Router`] / [`Verdict`] / [`RequestView`] are the contract with the core: an embedder
//!   may route with its own type instead.
//!
//! This module depends only on `sip`; `proxy` calls it.

#![forbid(unsafe_code)]

mod action;
mod addr;
mod compile;
mod engine;
mod file;
pub mod lua;
mod predicate;
mod rules;
mod shared;
mod text;
mod verdict;
mod view;

pub use action::{ActionKind, destination_of_uri};
pub use addr::Cidr;
pub use compile::{
    CompileOptions, DEFAULT_SCRIPT_INSTRUCTIONS, DEFAULT_SCRIPT_MEMORY, PolicyError, compile_file,
    compile_str, relay_guard,
};
pub use engine::{Decision, Engine};
pub use lua::{LuaRouter, ScriptError};
pub use rules::Policy;
pub use shared::{PolicyCounters, PolicyHandle};
pub use text::Scratch;
pub use verdict::{Destination, Forward, HeaderKey, Modifiers, Reply, Router, Verdict};
pub use view::RequestView;

/// The name of the header line `line` in `buf` (up to its colon).
pub fn header_line_name(buf: &[u8], line: crate::sip::Span) -> &[u8] {
    view::header_name(buf, line.start(), line.end())
}

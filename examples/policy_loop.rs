//! A fixed-count loop over the routing policy for instruction counting under callgrind
//! (repeatable on a loaded machine where wall-clock timings are not):
//!
//! ```text
//! cargo build --release --example policy_loop
//! valgrind --tool=callgrind target/release/examples/policy_loop step 20 20000
//! ```
//! Modes: `step RULES COUNT` (the policy step alone on the INVITE vector), `handle RULES
//! COUNT` (the whole core with the policy), `lua 1 COUNT` (one `script` rule calling the
//! bench's Lua function). Instructions per request = (total at N) - (total
//! at 0), divided by N.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/policy_support/mod.rs"]
mod policy_support;

use std::hint::black_box;
use std::time::Instant;

use ferrovia::policy::{Engine, PolicyHandle, RequestView, Router};
use ferrovia::proxy::OUTPUT_BUFFER_SIZE;
use ferrovia::sip::{Message, Transport};

const INVITE: &[u8] = include_bytes!("../tests/vectors/invite_sdp.sip");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: policy_loop step|handle RULES COUNT";
    let (mode, rules, count) = match args.as_slice() {
        [_, mode, rules, count] => (
            mode.as_str(),
            rules.parse::<usize>().expect(usage),
            count.parse::<u64>().expect(usage),
        ),
        _ => panic!("{usage}"),
    };
    let mut engine = if mode == "lua" {
        lua_engine()
    } else {
        Engine::new(PolicyHandle::new(policy_support::policy(rules), 1), 0)
    };
    let mut core = common::core();
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let input = common::input(INVITE, "10.0.0.1:5060", Instant::now());
    let msg = Message::scan(INVITE, false).expect("scans");
    let uri =
        RequestView::new(&msg, input.flow.source, input.flow.local, Transport::Udp).uri_parsed();
    for _ in 0..count {
        match mode {
            "step" | "lua" => {
                // As the core builds it: the Request-URI parsed already.
                let view = RequestView::with_uri(
                    &msg,
                    uri,
                    input.flow.source,
                    input.flow.local,
                    Transport::Udp,
                );
                black_box(matches!(
                    engine.route(black_box(&view)),
                    ferrovia::policy::Verdict::Forward(_)
                ));
            }
            "handle" => {
                if core.state.router.is_none() {
                    let engine = std::mem::replace(&mut engine, lua_engine_or_rules(rules));
                    core.state.router = Some(Box::new(engine));
                }
                let outcome = core.handle(black_box(input), &mut out);
                let _ = black_box(outcome);
            }
            _ => panic!("{usage}"),
        }
    }
}

const SCRIPT: &str = r#"
function route(req)
  if req:from_user() == "alice" then
    return { action = "proxy", to = "sip:10.0.0.9:5060", add_headers = { "X-Scripted: 1" } }
  end
  return { action = "reject", code = 404 }
end
"#;

fn lua_engine_or_rules(rules: usize) -> Engine {
    Engine::new(PolicyHandle::new(policy_support::policy(rules), 1), 0)
}

fn lua_engine() -> Engine {
    let dir = std::env::temp_dir().join(format!("ferrovia-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    std::fs::write(dir.join("loop.lua"), SCRIPT).expect("write the script");
    let text =
        "[policy]\nscript = \"loop.lua\"\n\n[[route]]\naction = \"script\"\nfunction = \"route\"\n";
    let options = ferrovia::policy::CompileOptions { workers: 1 };
    let policy = ferrovia::policy::compile_str(text, &dir.join("loop.toml"), &options)
        .expect("the script policy compiles");
    Engine::new(PolicyHandle::new(policy, 1), 0)
}

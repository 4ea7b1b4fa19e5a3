//! The routing policy's cost: the policy step alone (`Engine::route` on a scanned INVITE) for
//! 1, 20 and 200 compiled rules, the whole core with and without a 20-rule policy, and a Lua
//! `script` call (criterion's mean, plus p50/p99/p99.9 of 200,000 timed calls printed on
//! stderr, since criterion reports no tail).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/policy_support/mod.rs"]
mod policy_support;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use ferrovia::policy::{CompileOptions, Engine, PolicyHandle, RequestView, Router, compile_str};
use ferrovia::proxy::{OUTPUT_BUFFER_SIZE, Outcome};
use ferrovia::sip::{Message, Transport};

const INVITE: &[u8] = include_bytes!("../tests/vectors/invite_sdp.sip");

fn engine(n: usize) -> Engine {
    Engine::new(PolicyHandle::new(policy_support::policy(n), 1), 0)
}

fn view<'a>(msg: &'a Message<'a>) -> RequestView<'a> {
    RequestView::new(
        msg,
        "10.0.0.1:5060".parse().unwrap(),
        common::PROXY_ADDR.parse().unwrap(),
        Transport::Udp,
    )
}

/// The step as the core takes it: a fresh view per request (From and To parsed on demand,
/// the Request-URI already parsed by the core), then the rules.
fn policy_step(c: &mut Criterion) {
    let msg = Message::scan(INVITE, false).unwrap();
    let uri = view(&msg).uri_parsed();
    let (source, local) = (
        "10.0.0.1:5060".parse().unwrap(),
        common::PROXY_ADDR.parse().unwrap(),
    );
    let mut group = c.benchmark_group("policy_step");
    for n in [1, 20, 200] {
        let mut engine = engine(n);
        group.bench_function(format!("{n}_rules"), |b| {
            b.iter(|| {
                let view =
                    RequestView::with_uri(black_box(&msg), uri, source, local, Transport::Udp);
                let verdict = engine.route(&view);
                black_box(matches!(verdict, ferrovia::policy::Verdict::Forward(_)))
            })
        });
    }
    group.finish();
}

fn core_with_policy(c: &mut Criterion) {
    let mut core = common::core();
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let input = common::input(INVITE, "10.0.0.1:5060", Instant::now());
    let mut group = c.benchmark_group("scan_policy_decide_rewrite");
    group.bench_function("invite_sdp_no_policy", |b| {
        b.iter(|| black_box(core.handle(black_box(input), &mut out)))
    });
    core.state.router = Some(Box::new(engine(20)) as Box<dyn Router>);
    assert!(matches!(core.handle(input, &mut out), Outcome::Forward(_)));
    group.bench_function("invite_sdp_20_rules", |b| {
        b.iter(|| black_box(core.handle(black_box(input), &mut out)))
    });
    group.finish();
}

const SCRIPT: &str = r#"
function route(req)
  if req:from_user() == "alice" then
    return { action = "proxy", to = "sip:10.0.0.9:5060", add_headers = { "X-Scripted: 1" } }
  end
  return { action = "reject", code = 404 }
end
"#;

fn lua_engine() -> Engine {
    let dir = std::env::temp_dir().join(format!("ferrovia-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bench.lua"), SCRIPT).unwrap();
    let text = "[policy]\nscript = \"bench.lua\"\n\n[[route]]\naction = \"script\"\nfunction = \"route\"\n";
    let policy = compile_str(
        text,
        &dir.join("bench.toml"),
        &CompileOptions { workers: 1 },
    )
    .unwrap();
    Engine::new(PolicyHandle::new(policy, 1), 0)
}

fn lua_call(c: &mut Criterion) {
    let msg = Message::scan(INVITE, false).unwrap();
    let view = view(&msg);
    let mut engine = lua_engine();
    assert!(matches!(
        engine.route(&view),
        ferrovia::policy::Verdict::Forward(_)
    ));
    c.bench_function("lua_script_call", |b| {
        b.iter(|| {
            black_box(matches!(
                engine.route(black_box(&view)),
                ferrovia::policy::Verdict::Forward(_)
            ))
        })
    });
    tail(&mut engine, &view);
}

/// Percentiles of single calls (each timed with two clock reads, ~20 ns of the figure).
fn tail(engine: &mut Engine, view: &RequestView<'_>) {
    let mut ns: Vec<u64> = (0..200_000)
        .map(|_| {
            let start = Instant::now();
            black_box(matches!(
                engine.route(view),
                ferrovia::policy::Verdict::Forward(_)
            ));
            start.elapsed().as_nanos() as u64
        })
        .collect();
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)];
    eprintln!(
        "lua_script_call single calls: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        at(0.5),
        at(0.99),
        at(0.999),
        ns[ns.len() - 1]
    );
}

criterion_group!(benches, policy_step, core_with_policy, lua_call);
criterion_main!(benches);

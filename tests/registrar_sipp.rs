//! The registrar end to end with the real sipp and the real binary: twenty users register
//! with digest authentication (401, then REGISTER with Authorization, 200 with the
//! binding's expiry), then five of them call the others through the location service
//! (407, ACK, INVITE with Proxy-Authorization, 180, 200, ACK, BYE from the callee).
//! Every user registered from one sipp port, where a sipp UAS answers every call; the
//! callers' INVITEs name only `sip:USER@edge.example`, so each reaches the UAS only through
//! the binding's recorded flow. The counters and `/location` agree.

mod runtime_support;

use std::path::PathBuf;
use std::time::Duration;

use runtime_support::process::{Ferrovia, Sipp};
use runtime_support::{free_udp_port, http_get};

const USERS: usize = 20;
const CALLERS: usize = 5;
const SIPP_LIMIT: Duration = Duration::from_secs(60);

fn user(i: usize) -> String {
    format!("user{i:02}")
}

/// A scratch directory with the config, the users file and the callee list.
fn setup() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("registrar-sipp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let users: String = (0..USERS)
        .map(|i| format!("{}:edge.example:password:pw-{}\n", user(i), user(i)))
        .collect();
    std::fs::write(dir.join("users"), users).unwrap();
    std::fs::write(
        dir.join("ferrovia.toml"),
        "record-route = true\nmetrics = \"127.0.0.1:0\"\n[registrar]\n\
         domains = [\"edge.example\"]\nusers = \"users\"\nauthenticate = [\"INVITE\", \"MESSAGE\"]\n",
    )
    .unwrap();
    let callees: String = (CALLERS..USERS).map(|i| format!("{}\n", user(i))).collect();
    std::fs::write(dir.join("callees.csv"), format!("SEQUENTIAL\n{callees}")).unwrap();
    dir
}

fn sipp_args(proxy: &str, port: u16, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![proxy.into(), "-i".into(), "127.0.0.1".into()];
    args.extend(["-p".into(), port.to_string()]);
    args.extend(["-timeout".into(), "30s".into(), "-timeout_error".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn many_users_register_with_digest_then_call_each_other_through_the_location_service() {
    Sipp::require();
    let dir = setup();
    let config = dir.join("ferrovia.toml");
    let mut proxy = Ferrovia::start(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "udp:127.0.0.1:0",
            "--workers",
            "2",
        ],
        1,
    );
    let metrics_line = proxy.await_line("metrics on http://");
    let metrics: std::net::SocketAddr = metrics_line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .expect("the metrics address");
    let target = proxy.addr().to_string();
    let phones = free_udp_port();
    for i in 0..USERS {
        let (name, password) = (user(i), format!("pw-{}", user(i)));
        let scenario = Sipp::scenario("register_auth.xml");
        let extra = [
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            &name,
            "-au",
            &name,
            "-ap",
            &password,
            "-key",
            "domain",
            "edge.example",
            "-m",
            "1",
        ];
        let run = Sipp::start(
            &format!("register-{name}"),
            &sipp_args(&target, phones, &extra),
        );
        let result = run.finish(SIPP_LIMIT);
        assert_eq!(result.code, Some(0), "{name} registers: {result:#?}");
    }
    let stats = http_get(metrics, "/metrics");
    assert!(
        stats.contains(&format!(
            "ferrovia_registrar_registrations_total{{result=\"ok\"}} {USERS}"
        )),
        "{stats}"
    );
    assert!(
        stats.contains(&format!("ferrovia_registrar_bindings {USERS}")),
        "{stats}"
    );
    let location = http_get(metrics, "/location");
    assert_eq!(location.matches("\"aor\"").count(), USERS, "{location}");

    let calls_each = (USERS - CALLERS) / CALLERS;
    let uas_scenario = Sipp::scenario("alice_uas.xml");
    let calls = (CALLERS * calls_each).to_string();
    let uas = Sipp::start(
        "registrar-uas",
        &sipp_args(
            "",
            phones,
            &["-sf", uas_scenario.to_str().unwrap(), "-m", &calls],
        )[1..],
    );
    std::thread::sleep(Duration::from_millis(300));
    let callees = dir.join("callees.csv");
    let uac_scenario = Sipp::scenario("call_auth_uac.xml");
    for i in 0..CALLERS {
        let (name, password) = (user(i), format!("pw-{}", user(i)));
        let m = calls_each.to_string();
        let extra = [
            "-sf",
            uac_scenario.to_str().unwrap(),
            "-inf",
            callees.to_str().unwrap(),
            "-s",
            &name,
            "-au",
            &name,
            "-ap",
            &password,
            "-key",
            "domain",
            "edge.example",
            "-m",
            &m,
            "-r",
            "20",
        ];
        let run = Sipp::start(
            &format!("call-{name}"),
            &sipp_args(&target, free_udp_port(), &extra),
        );
        let result = run.finish(SIPP_LIMIT);
        assert_eq!(result.code, Some(0), "{name} calls: {result:#?}");
        assert_eq!(result.counter("SuccessfulCall(C)"), calls_each as u64);
    }
    let result = uas.finish(SIPP_LIMIT);
    assert_eq!(result.code, Some(0), "the callees answer: {result:#?}");
    let stats = http_get(metrics, "/metrics");
    let found = (CALLERS * calls_each).to_string();
    assert!(
        stats.contains(&format!(
            "ferrovia_registrar_lookups_total{{result=\"found\"}} {found}"
        )),
        "{stats}"
    );
    assert!(
        stats.contains("ferrovia_registrar_auth_total{result=\"bad_response\"} 0"),
        "{stats}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! The binary as an operator meets it: --help, bad flags and files (exit 2), a config file
//! overridden by flags, a taken address (exit 1), and a clean stop on SIGTERM with a summary.

mod runtime_support;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Output};

use runtime_support::process::Ferrovia;

fn run(args: &[&str]) -> Output {
    Command::new(Ferrovia::binary())
        .args(args)
        .output()
        .expect("run the ferrovia binary")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_flags");
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    let path = dir.join(format!("{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write the config file");
    path
}

#[test]
fn help_explains_every_flag_with_an_example() {
    let output = run(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--advertise",
        "--workers",
        "--record-route",
        "--next-hop",
        "--metrics",
        "--config",
        "--log-level",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
        let example = format!("Example: {flag}");
        assert!(
            help.contains(&example),
            "--help has no example of {flag}:\n{help}"
        );
    }
    assert!(help.contains("stats"), "{help}");
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    for (args, says) in [
        (&["--bogus"][..], "--bogus"),
        (&["--listen", "127.0.0.1:5060"], "udp:IP:PORT"),
        (
            &["--listen", "sctp:127.0.0.1:5060"],
            "udp, tcp, tls, ws or wss",
        ),
        (&["--workers", "0"], "workers"),
        (&["--next-hop", "10.0.0.9"], "sip:"),
        (&["--metrics", "9090"], "off"),
        (&["--log-level", "loud"], "trace"),
    ] {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn bad_config_files_exit_2_naming_the_problem() {
    let unknown = config_file("unknown", "workers = 1\nlissten = [\"udp:127.0.0.1:0\"]\n");
    let output = run(&["--config", unknown.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("lissten"), "{}", stderr(&output));

    let bad_value = config_file("bad-value", "next-hop = \"core.example.net\"\n");
    let output = run(&["--config", bad_value.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("sip:"), "{}", stderr(&output));

    let output = run(&["--config", "/nonexistent/ferrovia.toml"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("/nonexistent/ferrovia.toml"));
}

#[test]
fn a_config_file_is_read_and_flags_override_it() {
    let path = config_file(
        "override",
        "listen = [\"udp:127.0.0.1:0\"]\nworkers = 3\nmetrics = \"off\"\nlog-level = \"info\"\n",
    );
    let proxy = Ferrovia::start(&["--config", path.to_str().unwrap(), "--workers", "1"], 1);
    assert!(
        proxy.addr().ip().is_loopback(),
        "the file's listen address was used"
    );
    let started = proxy.stderr.join("\n");
    assert!(
        started.contains("(1 workers)"),
        "--workers overrode the file:\n{started}"
    );
    let (status, stderr) = proxy.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("with 1 workers"), "{stderr}");
}

/// Starts two workers, gives them one datagram, stops them with `signal`.
fn stops_cleanly_on(signal: i32) {
    let proxy = Ferrovia::start(
        &[
            "--listen",
            "udp:127.0.0.1:0",
            "--workers",
            "2",
            "--metrics",
            "off",
        ],
        1,
    );
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    junk.send_to(b"not sip at all", proxy.addr()).unwrap();
    let (status, stderr) = proxy.stop_with(signal);
    assert!(status.success(), "{stderr}");
    for line in [
        "ferrovia stopped",
        "received",
        "forwarded request",
        "dropped",
        "send errors",
    ] {
        assert!(
            stderr.contains(line),
            "the summary lacks {line:?}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("not_sip"),
        "the datagram was counted:\n{stderr}"
    );
}

#[test]
fn sigterm_stops_the_workers_and_prints_a_summary() {
    stops_cleanly_on(libc::SIGTERM);
}

#[test]
fn sigint_stops_the_workers_and_prints_a_summary() {
    stops_cleanly_on(libc::SIGINT);
}

#[test]
fn two_listeners_v4_and_v6_share_the_workers() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let proxy = Ferrovia::start(
        &[
            "--listen",
            "udp:127.0.0.1:0",
            "--listen",
            "udp:[::1]:0",
            "--metrics",
            "off",
        ],
        2,
    );
    assert!(
        proxy.addrs[0].is_ipv4() && proxy.addrs[1].is_ipv6(),
        "{:?}",
        proxy.addrs
    );
    let (status, stderr) = proxy.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn an_address_in_use_exits_1() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let listen = format!("udp:{}", taken.local_addr().unwrap());
    let output = run(&["--listen", &listen, "--metrics", "off"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot listen on"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_wildcard_bind_advertises_a_real_address() {
    let proxy = Ferrovia::start(
        &[
            "--listen",
            "udp:0.0.0.0:0",
            "--workers",
            "1",
            "--metrics",
            "off",
        ],
        1,
    );
    let started = proxy.stderr.join("\n");
    assert!(
        started.contains(" as "),
        "the advertised address is logged:\n{started}"
    );
    let (status, stderr) = proxy.terminate();
    assert!(status.success(), "{stderr}");
}

/// `ferrovia stats` reads a running proxy's endpoint; `--hgrm FILE` is written at exit.
#[test]
fn stats_subcommand_and_hgrm_file() {
    let hgrm = std::env::temp_dir().join(format!("ferrovia-test-{}.hgrm", std::process::id()));
    let _ = std::fs::remove_file(&hgrm);
    let mut proxy = Ferrovia::start(
        &[
            "--listen",
            "udp:127.0.0.1:0",
            "--workers",
            "1",
            "--metrics",
            "127.0.0.1:0",
            "--hgrm",
            hgrm.to_str().unwrap(),
        ],
        1,
    );
    let line = proxy.await_line("metrics on http://");
    let metrics = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the metrics address is logged");
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    junk.send_to(b"not sip at all", proxy.addr()).unwrap();
    let out = std::process::Command::new(Ferrovia::binary())
        .args(["stats", "--metrics", metrics])
        .output()
        .expect("run ferrovia stats");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in ["received", "latency (µs)", "p99.9"] {
        assert!(
            text.contains(want),
            "ferrovia stats lacks {want:?}:\n{text}"
        );
    }
    let (status, stderr) = proxy.terminate();
    assert!(status.success(), "{stderr}");
    let written = std::fs::read_to_string(&hgrm).expect("the .hgrm file was written");
    assert!(written.contains("Percentile"), "{written}");
    let _ = std::fs::remove_file(&hgrm);
}

#[test]
fn stats_subcommand_without_a_proxy_fails_clearly() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::process::Command::new(Ferrovia::binary())
        .args(["stats", "--metrics", &format!("127.0.0.1:{port}")])
        .output()
        .expect("run ferrovia stats");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ferrovia stats:"));
}

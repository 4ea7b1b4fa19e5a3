//! Black-box tests of the metrics server over real loopback sockets: a known set of samples
//! recorded by two workers comes back exact from `/metrics`, `/stats` and `/stats.hgrm`;
//! `promtool` accepts `/metrics`; bad requests get 400, 404, 405, 431 and 408.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use ferrovia::proxy::{Direction, DropReason};
use ferrovia::stats::{self, StatsConfig, StatsHandle, WorkerStats};

/// What one worker records in `record`.
struct Plan {
    received: u64,
    requests: Vec<u64>,
    responses: Vec<u64>,
    replies: Vec<(u16, u64)>,
    send_errors: u64,
    kernel_drops: Vec<u64>,
}

fn plans() -> [Plan; 2] {
    [
        Plan {
            received: 20,
            requests: vec![1_000, 2_000, 3_000, 4_000, 5_000, 1_000_000],
            responses: vec![800, 900, 250_000],
            replies: vec![(200, 4_000), (483, 6_000), (483, 7_000)],
            send_errors: 1,
            kernel_drops: vec![5, 7],
        },
        Plan {
            received: 11,
            requests: vec![10_000, 20_000, 30_000],
            responses: vec![1_500; 5],
            replies: vec![(503, 2_000)],
            send_errors: 3,
            kernel_drops: vec![2],
        },
    ]
}

/// Worker `w` drops `w + i + 1` messages for the `i`th reason.
fn drops(worker: usize, reason: usize) -> u64 {
    (worker + reason + 1) as u64
}

fn record(worker: usize, stats: &mut WorkerStats, plan: &Plan) {
    stats.received(plan.received);
    for &ns in &plan.requests {
        stats.forwarded(Direction::Request, ns);
    }
    for &ns in &plan.responses {
        stats.forwarded(Direction::Response, ns);
    }
    for &(status, ns) in &plan.replies {
        stats.replied(status, ns);
    }
    for (i, &reason) in DropReason::ALL.iter().enumerate() {
        for _ in 0..drops(worker, i) {
            stats.dropped(reason);
        }
    }
    for _ in 0..plan.send_errors {
        stats.send_error();
    }
    for &cumulative in &plan.kernel_drops {
        stats.kernel_drops(cumulative);
    }
    stats.flush();
}

/// Starts two workers' stats with a metrics server on a free loopback port, records the
/// plans on two threads, and returns the handle once both have flushed.
fn recorded() -> (StatsHandle, SocketAddr) {
    let config = StatsConfig {
        workers: 2,
        metrics: Some("127.0.0.1:0".parse().unwrap()), // a literal address
        ..StatsConfig::default()
    };
    let (handle, workers) = stats::start(config).expect("stats start on loopback");
    let plans = plans();
    std::thread::scope(|s| {
        for ((i, mut w), plan) in workers.into_iter().enumerate().zip(&plans) {
            s.spawn(move || record(i, &mut w, plan));
        }
    });
    let addr = handle.metrics_addr().expect("metrics was configured");
    (handle, addr)
}

/// Sends raw bytes, reads until the server closes, returns the status and the body.
fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap(); // non-zero
    stream.write_all(request).expect("send the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    (status.expect("a status line"), body.to_string())
}

fn get(addr: SocketAddr, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    let (status, body) = exchange(addr, request.as_bytes());
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// `/metrics` samples by their full name with labels, e.g. `a_total{worker="0"}`.
fn samples(text: &str) -> HashMap<String, f64> {
    let lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty());
    let sample = |l: &str| {
        let (name, value) = l.rsplit_once(' ').expect("name and value");
        (name.to_string(), value.parse().expect("a number"))
    };
    lines.map(sample).collect()
}

#[test]
fn metrics_report_the_recorded_counters_exactly() {
    let (handle, addr) = recorded();
    let m = samples(&get(addr, "/metrics"));
    for (w, plan) in plans().iter().enumerate() {
        let at = |name: &str, labels: &str| {
            let key = format!("ferrovia_{name}{{worker=\"{w}\"{labels}}}");
            *m.get(&key).unwrap_or_else(|| panic!("no {key}"))
        };
        assert_eq!(at("received_total", ""), plan.received as f64);
        let req = plan.requests.len() as f64;
        let resp = plan.responses.len() as f64;
        assert_eq!(at("forwarded_total", ",direction=\"request\""), req);
        assert_eq!(at("forwarded_total", ",direction=\"response\""), resp);
        for status in [200, 483, 503] {
            let n = plan.replies.iter().filter(|r| r.0 == status).count();
            let key = format!("ferrovia_replied_total{{worker=\"{w}\",status=\"{status}\"}}");
            assert_eq!(m.get(&key).copied().unwrap_or(0.0), n as f64, "{key}");
        }
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            let labels = format!(",reason=\"{}\"", reason.name());
            assert_eq!(at("dropped_total", &labels), drops(w, i) as f64);
        }
        assert_eq!(at("send_errors_total", ""), plan.send_errors as f64);
        let kernel = [7.0, 2.0][w];
        assert_eq!(at("kernel_drops_total", ""), kernel);
        let request = ",direction=\"request\"";
        assert_eq!(at("forward_latency_seconds_count", request), req);
        let inf = ",direction=\"request\",le=\"+Inf\"";
        assert_eq!(at("forward_latency_seconds_bucket", inf), req);
        let sum: u64 = plan.requests.iter().sum();
        let got = at("forward_latency_seconds_sum", request);
        assert!((got - sum as f64 / 1e9).abs() < 1e-12, "{got}");
        let replies = plan.replies.len() as f64;
        assert_eq!(at("reply_latency_seconds_count", ""), replies);
    }
    // Worker 0's requests: 1, 2, 3, 4, 5 µs and 1 ms, so 1 by 1 µs, 2 by 2.5 µs, 5 by 10 µs.
    let bucket = |le: &str| {
        let key = format!(
            "ferrovia_forward_latency_seconds_bucket\
             {{worker=\"0\",direction=\"request\",le=\"{le}\"}}"
        );
        m[&key]
    };
    assert_eq!(bucket("0.000001"), 1.0);
    assert_eq!(bucket("0.0000025"), 2.0);
    assert_eq!(bucket("0.00001"), 5.0);
    assert_eq!(bucket("0.001"), 6.0);
    let merged = "ferrovia_forward_latency_recent_seconds_count{direction=\"request\"}";
    assert_eq!(m[merged], 9.0);
    handle.shutdown();
}

#[test]
fn stats_json_reports_counters_and_percentiles_exactly() {
    let (handle, addr) = recorded();
    let json: serde_json::Value = serde_json::from_str(&get(addr, "/stats")).expect("JSON");
    let plans = plans();
    let merged = &json["merged"]["cumulative"];
    let total = |f: fn(&Plan) -> u64| plans.iter().map(f).sum::<u64>();
    assert_eq!(merged["received"], total(|p| p.received));
    let requests = total(|p| p.requests.len() as u64);
    assert_eq!(merged["forwarded"]["request"], requests);
    assert_eq!(merged["latency"]["request"]["count"], requests);
    assert_eq!(merged["replied"]["483"], 2);
    assert_eq!(merged["send_errors"], 4);
    assert_eq!(merged["kernel_drops"], 9);
    for (i, reason) in DropReason::ALL.iter().enumerate() {
        assert_eq!(merged["dropped"][reason.name()], drops(0, i) + drops(1, i));
    }
    let w0 = &json["workers"][0]["cumulative"]["latency"]["request"];
    assert_eq!(w0["count"], 6);
    assert_eq!(w0["sum_ns"], 1_015_000);
    // Percentiles are the top of HdrHistogram's bucket: 3000 and 3001 share one.
    assert_eq!(w0["p50_ns"], 3_001);
    assert_eq!(w0["p90_ns"], w0["max_ns"]);
    let max = w0["max_ns"].as_u64().expect("max_ns is a number");
    assert!((1_000_000..=1_001_000).contains(&max), "{max}");
    let w1 = &json["workers"][1]["last_interval"];
    assert_eq!(w1["forwarded"]["response"], 5);
    assert_eq!(w1["latency"]["response"]["p99_ns"], 1_500);
    handle.shutdown();
}

#[test]
fn stats_hgrm_counts_every_forwarded_message() {
    let (handle, addr) = recorded();
    let forwarded: usize = plans()
        .iter()
        .map(|p| p.requests.len() + p.responses.len())
        .sum();
    let text = get(addr, "/stats.hgrm");
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    let columns: Vec<_> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let last = rows.last().expect("rows");
    assert_eq!(last[1], "1.000000000000");
    assert_eq!(last[2], forwarded.to_string());
    let counts: Vec<u64> = rows.iter().map(|r| r[2].parse().unwrap()).collect(); // digits
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{text}");
    let footer = format!("Total count    = {forwarded:>12}]");
    assert!(text.contains(&footer), "{text}");
    let replies = get(addr, "/stats.hgrm?series=reply&worker=0");
    assert!(
        replies.contains(&format!("Total count    = {:>12}]", 3)),
        "{replies}"
    );
    handle.shutdown();
}

#[test]
fn promtool_accepts_the_metrics() {
    let Ok(status) = Command::new("promtool").arg("--version").output() else {
        // CI installs promtool and sets FERROVIA_REQUIRE_TOOLS, so there this cannot skip.
        assert!(
            std::env::var_os("FERROVIA_REQUIRE_TOOLS").is_none(),
            "promtool is required (apt-get install prometheus)"
        );
        println!("skipping: promtool is not on PATH (Debian package `prometheus`)");
        return;
    };
    assert!(status.status.success(), "promtool --version failed");
    let (handle, addr) = recorded();
    let metrics = get(addr, "/metrics");
    handle.shutdown();
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    let mut stdin = check.stdin.take().expect("piped stdin");
    stdin.write_all(metrics.as_bytes()).expect("feed promtool");
    drop(stdin);
    let out = check.wait_with_output().expect("promtool finishes");
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "promtool check metrics: {said}\n{metrics}"
    );
}

#[test]
fn bad_requests_get_400_404_405_and_431() {
    let (handle, addr) = recorded();
    let cases: [(&[u8], u16); 7] = [
        (b"\x16\x03\x01garbage\r\n\r\n", 400),
        (b"GET /metrics HTTP/7.0\r\n\r\n", 400),
        (b"GET /stats HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        (b"GET /stats.hgrm?series=nope HTTP/1.1\r\n\r\n", 400),
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"DELETE /stats HTTP/1.1\r\n\r\n", 405),
    ];
    for (request, want) in cases {
        let (status, body) = exchange(addr, request);
        assert_eq!(
            status,
            want,
            "{:?}: {body}",
            String::from_utf8_lossy(request)
        );
    }
    let huge = format!("GET /stats HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(exchange(addr, huge.as_bytes()).0, 431);
    // A head cut short by the client closing its side.
    let mut cut = TcpStream::connect(addr).unwrap(); // the server is up
    cut.write_all(b"GET /stats HTTP/1.1\r\nHo").unwrap();
    cut.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    cut.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    handle.shutdown();
}

#[test]
fn a_silent_client_gets_408_and_stalls_neither_workers_nor_scrapes_for_long() {
    let config = StatsConfig {
        workers: 1,
        metrics: Some("127.0.0.1:0".parse().unwrap()), // a literal address
        ..StatsConfig::default()
    };
    let (handle, mut workers) = stats::start(config).unwrap(); // loopback port 0
    let addr = handle.metrics_addr().unwrap(); // configured above
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.write_all(b"GET /metr").unwrap();
    // While the server waits on the silent client, recording and snapshots go on.
    workers[0].forwarded(Direction::Request, 5_000);
    workers[0].flush();
    let forwarded = handle
        .snapshot()
        .merged()
        .cumulative
        .counters()
        .forwarded_total();
    assert_eq!(forwarded, 1);
    // A scrape queued behind the silent client is served once its deadline passes.
    let metrics = get(addr, "/metrics");
    assert!(metrics.contains("ferrovia_forwarded_total{worker=\"0\",direction=\"request\"} 1"));
    let mut answer = String::new();
    silent.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    drop(workers);
    handle.shutdown();
}

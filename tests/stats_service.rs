//! The statistics of a running proxy are exact: a known number of messages goes through the
//! real service (2 workers, real loopback sockets), then `/stats`, `/metrics` and
//! `/stats.hgrm` are scraped over HTTP and must agree with what was sent, and with each other.

mod runtime_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use ferrovia::service::Service;
use ferrovia::settings::{ListenAddr, Metrics, Settings};
use ferrovia::stats::client;
use runtime_support::sip::{invite, response, top_via_sent_by};
use runtime_support::{http_get, peer, recv_text};

const CALLS: usize = 40;
const GARBAGE: usize = 3;
const HOPLESS: usize = 2;

fn settings() -> Settings {
    Settings {
        listen: vec![ListenAddr::udp(SocketAddr::from(([127, 0, 0, 1], 0)))],
        workers: 2,
        metrics: Metrics::On(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Settings::default()
    }
}

/// Sends the traffic: CALLS transactions from CALLS distinct flows (so both workers see
/// some), GARBAGE datagrams and HOPLESS requests with Max-Forwards 0.
fn drive(proxy: SocketAddr) {
    let alice = peer();
    let alice_addr = alice.local_addr().unwrap();
    for call in 0..CALLS {
        let bob = peer();
        let bob_addr = bob.local_addr().unwrap();
        bob.send_to(
            invite(bob_addr, alice_addr, &format!("c{call}")).as_bytes(),
            proxy,
        )
        .unwrap();
        let (request, _) = recv_text(&alice);
        let reply = response(&request, 200, "OK");
        alice
            .send_to(reply.as_bytes(), top_via_sent_by(&request).unwrap())
            .unwrap();
        let (answer, _) = recv_text(&bob);
        assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    }
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..GARBAGE {
        sender.send_to(b"GET / HTTP/1.1\r\n\r\n", proxy).unwrap();
    }
    let bob = peer();
    let bob_addr = bob.local_addr().unwrap();
    for call in 0..HOPLESS {
        let hopless = invite(bob_addr, alice_addr, &format!("h{call}"))
            .replace("Max-Forwards: 70", "Max-Forwards: 0");
        bob.send_to(hopless.as_bytes(), proxy).unwrap();
        let (answer, _) = recv_text(&bob);
        assert!(answer.starts_with("SIP/2.0 483"), "{answer}");
    }
}

/// The sum of every sample of `metric` (all label sets) in Prometheus text.
fn metric_sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn scraped_counters_and_histograms_are_exact() {
    let service = Service::start(&settings()).expect("the service starts");
    let proxy = service.local_addrs()[0];
    let metrics = service.metrics_addr().expect("metrics are served");
    drive(proxy);

    let forwarded = 2 * CALLS as u64;
    let received = forwarded + (GARBAGE + HOPLESS) as u64;
    // Workers hand off once per interval: wait (bounded) until everything has arrived.
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let report = client::fetch(metrics).expect("GET /stats");
        if report.merged.cumulative.received == received || Instant::now() > deadline {
            break report;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let all = &report.merged.cumulative;
    assert_eq!(all.received, received);
    assert_eq!(
        (all.forwarded.request, all.forwarded.response),
        (CALLS as u64, CALLS as u64)
    );
    assert_eq!(all.replied.get("483"), Some(&(HOPLESS as u64)));
    assert_eq!(all.dropped.get("not_sip"), Some(&(GARBAGE as u64)));
    assert_eq!(
        all.latency.request.count + all.latency.response.count,
        forwarded
    );
    assert_eq!(all.latency.reply.count, HOPLESS as u64);
    assert_eq!(report.workers.len(), 2);
    let per_worker: u64 = report.workers.iter().map(|w| w.cumulative.received).sum();
    assert_eq!(per_worker, received, "workers add up to the merged view");

    let text = http_get(metrics, "/metrics");
    assert_eq!(
        metric_sum(&text, "ferrovia_received_total"),
        received as f64
    );
    assert_eq!(
        metric_sum(&text, "ferrovia_forwarded_total"),
        forwarded as f64
    );
    assert_eq!(
        metric_sum(&text, "ferrovia_forward_latency_seconds_count"),
        forwarded as f64
    );
    assert_eq!(metric_sum(&text, "ferrovia_replied_total"), HOPLESS as f64);
    promtool_check(&text);

    let hgrm = http_get(metrics, "/stats.hgrm");
    assert!(hgrm.contains("Percentile"), "{hgrm}");
    let total = hgrm
        .split("Total count")
        .nth(1)
        .and_then(|rest| rest.trim_start_matches([' ', '=']).split(']').next())
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert_eq!(total, Some(forwarded), "{hgrm}");

    let stopped = service.shutdown();
    assert_eq!(stopped.failed_workers, 0);
    assert_eq!(
        stopped.snapshot.merged().cumulative.counters().received(),
        received
    );
}

/// `promtool check metrics` on the live output. CI installs promtool (Debian `prometheus`)
/// and sets FERROVIA_REQUIRE_TOOLS=1, so there it cannot be skipped.
fn promtool_check(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("FERROVIA_REQUIRE_TOOLS").is_none(),
            "promtool is required (apt-get install prometheus)"
        );
        println!("skipping promtool: not on PATH (Debian package `prometheus`)");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stream connections reach the exported statistics: an OPTIONS ping over TCP (answered by
/// the proxy itself) while the connection is held open.
#[test]
fn tcp_connections_are_counted_and_exported() {
    let settings = Settings {
        listen: vec![ListenAddr::tcp(SocketAddr::from(([127, 0, 0, 1], 0)))],
        workers: 2,
        metrics: Metrics::On(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Settings::default()
    };
    let service = Service::start(&settings).expect("the service starts");
    let proxy = service.local_addrs()[0];
    let metrics = service.metrics_addr().expect("metrics are served");
    let mut client = TcpStream::connect(proxy).expect("connect over TCP");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let ping = format!(
        "OPTIONS sip:{proxy};transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bK-ping\r\n\
         From: <sip:probe@example.net>;tag=p\r\nTo: <sip:{proxy}>\r\nCall-ID: ping@probe\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        client.local_addr().unwrap()
    );
    client.write_all(ping.as_bytes()).unwrap();
    let mut answer = [0u8; 2048];
    let n = client.read(&mut answer).expect("the 200 comes back");
    assert!(
        answer[..n].starts_with(b"SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    let accepted = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("ferrovia_stream_events_total{"))
            .filter(|l| l.contains("event=\"accepted\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // Workers hand off once a second: wait (bounded) for the connection to show.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = http_get(metrics, "/metrics");
        if accepted(&text) >= 1.0 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(accepted(&text), 1.0, "one accepted connection");
    assert_eq!(
        metric_sum(&text, "ferrovia_stream_connections"),
        1.0,
        "one open now"
    );
    assert_eq!(metric_sum(&text, "ferrovia_replied_total"), 1.0);
    promtool_check(&text);
    drop(client);
    assert_eq!(service.shutdown().failed_workers, 0);
}

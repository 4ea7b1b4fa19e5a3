//! Many sources: 100,000 distinct addresses in 127.0.0.0/8 (Linux answers for all of it on
//! loopback) each send one request through a proxy whose rate table holds 4,096 sources. The
//! table stays at its size (sources evict each other), and so does the proxy's memory.

mod protect_support;
mod runtime_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use protect_support::{example_config, protect_figure, rss_kib, start};
use runtime_support::sip::invite;

const SOURCES: u32 = 100_000;
const SLOTS: u64 = 4_096;

#[test]
fn a_hundred_thousand_sources_stay_within_the_table() {
    let config = example_config("sources", "");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[protect]\n", "[protect]\nsources = 4096\n"),
    )
    .unwrap();
    let (proxy, metrics) = start(&config);
    let pid = proxy.pid().unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink_addr = sink.local_addr().unwrap();
    let rss_before = rss_kib(pid).unwrap_or(0);
    assert_eq!(protect_figure(metrics, "source_slots"), SLOTS);
    let memory = protect_figure(metrics, "memory_bytes");

    for i in 0..SOURCES {
        // 127.1.0.0 upward: clear of the addresses other tests use.
        let ip = IpAddr::V4(Ipv4Addr::from(0x7f01_0000 + i));
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
        let request = invite(socket.local_addr().unwrap(), sink_addr, &format!("s{i}"));
        socket.send_to(request.as_bytes(), proxy.addr()).unwrap();
        if i % 1_000 == 999 {
            std::thread::sleep(Duration::from_millis(5)); // let the proxy keep up
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let tracked = protect_figure(metrics, "tracked_sources");
    let evictions = protect_figure(metrics, "evictions");
    let memory_after = protect_figure(metrics, "memory_bytes");
    let rss_after = rss_kib(pid).unwrap_or(0);
    let (status, log) = proxy.terminate();
    eprintln!(
        "sources: {SOURCES} sent one request each; {tracked} tracked in {SLOTS} slots, \
         {evictions} evictions, tables {memory} bytes; proxy RSS {rss_before} KiB before, \
         {rss_after} KiB after"
    );
    assert!(status.success(), "{log}");
    assert!(tracked <= SLOTS, "{tracked}");
    assert_eq!(memory_after, memory, "the tables never grow");
    assert!(
        evictions >= u64::from(SOURCES) * 9 / 10 - SLOTS,
        "{evictions}"
    );
    assert!(
        rss_after < rss_before + 8 * 1024,
        "{rss_before} -> {rss_after} KiB"
    );
}

//! The TCP hot path does not allocate: with a counting global allocator, a thousand request /
//! response round trips over TCP connections through two workers, and a thousand more from
//! a TCP client to sixteen UDP servers (some of whose responses reach the other worker and
//! are handed over: all sixteen on one worker is a 1 in 65,536 draw), cost no heap
//! allocation once the connections' buffers and the hand-off pool are warm. The test thread
//! reads and writes only buffers built before the measured window.

mod runtime_support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};

use ferrovia::record::StreamEvent;
use runtime_support::sip::{invite_over, response};
use runtime_support::tcp::{Family, NextHop, SipStream, dual_settings, start_dual};
use runtime_support::{RECV_LIMIT, recv_text};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

const ROUND_TRIPS: usize = 1_000;
const SERVERS: usize = 16;

/// Reads exactly `buf.len()` bytes from a connection.
fn read_exact(stream: &mut TcpStream, buf: &mut [u8]) {
    stream
        .read_exact(buf)
        .expect("the proxy sends the whole message");
}

#[test]
fn round_trips_over_tcp_and_across_workers_allocate_nothing() {
    let proxy = start_dual(&dual_settings(Family::V4, 2));
    let next = NextHop::bind(Family::V4);
    let mut client = SipStream::connect(proxy.tcp);
    let me = client.local_addr();

    // TCP → TCP: warm up once, keeping the exact bytes of each leg.
    let request = invite_over("TCP", me, next.addr(), "tcp", "tcp-no-alloc").into_bytes();
    client.send(&request);
    let mut hop = next.accept();
    let forwarded = hop.recv();
    let answer = response(&forwarded, 200, "OK").into_bytes();
    hop.send(&answer);
    let returned = client.recv();
    let mut forwarded_buf = vec![0u8; forwarded.len()];
    let mut returned_buf = vec![0u8; returned.len()];

    // TCP → UDP, responses handed between workers: warm the hand-off pool with bursts.
    let servers: Vec<UdpSocket> = (0..SERVERS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(RECV_LIMIT)).unwrap();
            s
        })
        .collect();
    let legs: Vec<(Vec<u8>, Vec<u8>, usize)> = servers
        .iter()
        .enumerate()
        .map(|(i, server)| {
            let to = server.local_addr().unwrap();
            let call = format!("udp-no-alloc-{i}");
            let request = invite_over("TCP", me, to, "udp", &call).into_bytes();
            client.send(&request);
            let (forwarded, _) = recv_text(server);
            let answer = response(&forwarded, 200, "OK").into_bytes();
            server.send_to(&answer, proxy.udp).unwrap();
            let returned = client.recv();
            (request, answer, returned.len())
        })
        .collect();
    for _ in 0..8 {
        for ((request, _, _), server) in legs.iter().zip(&servers) {
            client.send(request);
            recv_text(server);
        }
        for ((_, answer, _), server) in legs.iter().zip(&servers) {
            server.send_to(answer, proxy.udp).unwrap();
        }
        for (_, _, len) in &legs {
            client.recv_raw(*len);
        }
    }
    let longest = legs.iter().map(|(_, _, len)| *len).max().unwrap_or(0);
    let mut leg_buf = vec![0u8; longest];
    let mut datagram = vec![0u8; 65_536];
    let udp_proxy = proxy.udp;

    let before = alloc_support::in_process();
    for _ in 0..ROUND_TRIPS {
        client.stream.write_all(&request).unwrap();
        read_exact(&mut hop.stream, &mut forwarded_buf);
        hop.stream.write_all(&answer).unwrap();
        read_exact(&mut client.stream, &mut returned_buf);
    }
    for i in 0..ROUND_TRIPS {
        let (request, answer, len) = &legs[i % SERVERS];
        let server = &servers[i % SERVERS];
        client.stream.write_all(request).unwrap();
        server.recv_from(&mut datagram).unwrap();
        server.send_to(answer, udp_proxy).unwrap();
        read_exact(&mut client.stream, &mut leg_buf[..*len]);
    }
    let during = alloc_support::in_process() - before;

    let total = proxy.server.shutdown().counters();
    let expected = 2 * (2 * ROUND_TRIPS as u64 + 1 + 9 * SERVERS as u64);
    assert_eq!(total.forwarded_total(), expected, "{total:?}");
    assert!(total.stream(StreamEvent::HandedOff) > 0, "{total:?}");
    assert_eq!(
        during,
        0,
        "{during} allocations in {} round trips",
        2 * ROUND_TRIPS
    );
}

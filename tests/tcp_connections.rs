//! Many connections and the limits on them, over real loopback sockets on IPv4 and IPv6:
//! a thousand clients held open at once and every one served; the total and per-worker
//! connection limits; the idle timeout; a failed connect to a next hop; and a client that
//! never reads until its send queue passes its bound.

mod runtime_support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use ferrovia::proxy::Direction;
use ferrovia::record::StreamEvent;
use runtime_support::sip::{invite_over, response, status};
use runtime_support::tcp::{SipStream, dual_settings, on_each_family, start_dual};
use runtime_support::{count, recv_text, start_service, wait_for};

const CLIENTS: usize = 1_000;
/// Clients that send at once, so the UDP next hop's socket buffer never overflows.
const WAVE: usize = 100;

/// An OPTIONS for the proxy itself: answered 200 there (RFC 3261 §11).
fn options(from: SocketAddr, proxy: SocketAddr, call: &str) -> String {
    format!(
        "OPTIONS sip:{proxy};transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP {from};branch=z9hG4bK-{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:c@{from}>;tag=o\r\nTo: <sip:{proxy}>\r\n\
         Call-ID: {call}@connections.test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// One OPTIONS round trip: the connection is accepted and served.
fn ping(client: &mut SipStream, proxy: SocketAddr, call: &str) {
    client.send(options(client.local_addr(), proxy, call).as_bytes());
    let answer = client.recv();
    assert_eq!(status(&answer), Some(200), "{answer}");
}

/// Room for both ends of every connection in this process.
#[allow(unsafe_code)]
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit / setrlimit with a valid rlimit; the soft value stays within the hard one.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max.min(8 * CLIENTS as libc::rlim_t);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur >= 3 * CLIENTS as libc::rlim_t,
        "the open-file limit ({}) is too low for {CLIENTS} connections",
        limit.rlim_cur
    );
}

#[test]
fn a_thousand_clients_are_held_open_and_all_served() {
    raise_open_files();
    on_each_family("thousand", |family| {
        let proxy = start_dual(&dual_settings(family, 2));
        let server = family.udp_peer();
        let to = server.local_addr().unwrap();
        let mut clients: Vec<SipStream> = (0..CLIENTS)
            .map(|_| SipStream::connect(proxy.tcp))
            .collect();
        for (w, wave) in clients.chunks_mut(WAVE).enumerate() {
            for (i, client) in wave.iter_mut().enumerate() {
                let call = format!("k-{w}-{i}");
                client.send(invite_over("TCP", client.local_addr(), to, "udp", &call).as_bytes());
            }
            for _ in 0..wave.len() {
                let (request, _) = recv_text(&server);
                let answer = response(&request, 200, "OK");
                server.send_to(answer.as_bytes(), proxy.udp).unwrap();
            }
            for (i, client) in wave.iter_mut().enumerate() {
                let answer = client.recv();
                assert_eq!(status(&answer), Some(200), "{answer}");
                assert!(answer.contains(&format!("k-{w}-{i}@")), "{answer}");
            }
        }
        let total = proxy.server.shutdown().counters();
        assert_eq!(total.stream(StreamEvent::Accepted), CLIENTS as u64);
        assert_eq!(
            total.forwarded(Direction::Request),
            CLIENTS as u64,
            "{total:?}"
        );
        assert_eq!(
            total.forwarded(Direction::Response),
            CLIENTS as u64,
            "{total:?}"
        );
        assert_eq!(total.send_errors(), 0, "{total:?}");
        drop(clients);
    });
}

#[test]
fn past_the_total_limit_clients_are_refused_until_one_leaves() {
    on_each_family("total_limit", |family| {
        let mut settings = dual_settings(family, 2);
        settings.tcp.max_connections = 3;
        let server = start_service(&settings);
        let tcp = server.local_addrs()[1];
        let mut held: Vec<SipStream> = (0..3).map(|_| SipStream::connect(tcp)).collect();
        for (i, c) in held.iter_mut().enumerate() {
            ping(c, tcp, &format!("held-{i}"));
        }
        let mut extra = SipStream::connect(tcp);
        extra.expect_closed();
        wait_for(&server, StreamEvent::Refused, 1);

        let leaving = held.pop().unwrap();
        leaving.stream.shutdown(std::net::Shutdown::Both).unwrap();
        wait_for(&server, StreamEvent::ClosedByPeer, 1);
        let mut later = SipStream::connect(tcp);
        ping(&mut later, tcp, "later");
        let total = server.shutdown().counters();
        assert_eq!(total.stream(StreamEvent::Accepted), 4, "{total:?}");
    });
}

#[test]
fn past_the_per_worker_limit_clients_are_refused() {
    on_each_family("worker_limit", |family| {
        let mut settings = dual_settings(family, 1);
        settings.tcp.max_connections_per_worker = 2;
        let server = start_service(&settings);
        let tcp = server.local_addrs()[1];
        let mut held: Vec<SipStream> = (0..2).map(|_| SipStream::connect(tcp)).collect();
        for (i, c) in held.iter_mut().enumerate() {
            ping(c, tcp, &format!("w-{i}"));
        }
        SipStream::connect(tcp).expect_closed();
        wait_for(&server, StreamEvent::Refused, 1);
        drop(held);
        drop(server);
    });
}

#[test]
fn an_idle_connection_is_closed() {
    on_each_family("idle", |family| {
        let mut settings = dual_settings(family, 2);
        settings.tcp.idle_timeout = Duration::from_millis(200);
        let server = start_service(&settings);
        let tcp = server.local_addrs()[1];
        let mut client = SipStream::connect(tcp);
        ping(&mut client, tcp, "idle");
        client.expect_closed();
        wait_for(&server, StreamEvent::ClosedIdle, 1);
        drop(server);
    });
}

#[test]
fn a_next_hop_that_refuses_is_counted_and_the_proxy_carries_on() {
    on_each_family("refused_hop", |family| {
        let server = start_service(&dual_settings(family, 1));
        let tcp = server.local_addrs()[1];
        let nobody = TcpListener::bind(family.any_port())
            .unwrap()
            .local_addr()
            .unwrap();
        let mut client = SipStream::connect(tcp);
        let invite = invite_over("TCP", client.local_addr(), nobody, "tcp", "nobody");
        client.send(invite.as_bytes());
        wait_for(&server, StreamEvent::ConnectFailed, 1);
        ping(&mut client, tcp, "still-here");
        let total = server.shutdown().counters();
        assert_eq!(total.send_errors(), 1, "the INVITE was lost: {total:?}");
    });
}

#[test]
fn a_client_that_never_reads_is_dropped_at_its_send_queue_bound() {
    on_each_family("never_reads", |family| {
        let mut settings = dual_settings(family, 1);
        settings.tcp.max_message = 1024;
        settings.tcp.send_queue = 4096;
        let server = start_service(&settings);
        let tcp = server.local_addrs()[1];
        let mut client = SipStream::connect(tcp);
        let me = client.local_addr();
        let burst: String = (0..100)
            .map(|i| options(me, tcp, &format!("p{i}")))
            .collect();
        // Each OPTIONS is answered; nobody reads the answers. Bounded: 100,000 pings.
        for _ in 0..1_000 {
            if count(&server, StreamEvent::ClosedSendOverflow) > 0 {
                break;
            }
            if std::io::Write::write_all(&mut client.stream, burst.as_bytes()).is_err() {
                break;
            }
        }
        wait_for(&server, StreamEvent::ClosedSendOverflow, 1);
        drop(server);
    });
}

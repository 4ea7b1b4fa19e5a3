//! Figures for docs/PERFORMANCE.md (ignored by default: run with
//! `cargo test --release --test secure_perf -- --ignored --nocapture`): the proxy's CPU time
//! per forwarded message over TCP, TLS, WS and WSS in the same run (one client, round trips
//! through the ferrovia binary to a next hop), and TLS handshakes per second, full and resumed
//! (checked to be resumed). CPU time is read from /proc for the proxy process alone.

mod runtime_support;
mod secure_support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use runtime_support::process::Ferrovia;
use runtime_support::sip::{invite_over, response};
use runtime_support::tcp::{Family, NextHop, SipStream};
use secure_support::{Pki, SipConn, TlsNextHop, tls_connect, ws_connect};
use tungstenite::Message;

const ROUND_TRIPS: u32 = 20_000;
const HANDSHAKES: u32 = 500;

fn per_message(proxy: &Ferrovia, round: &mut dyn FnMut()) -> Duration {
    (0..200).for_each(|_| round());
    let before = proxy.cpu_time().expect("/proc");
    (0..ROUND_TRIPS).for_each(|_| round());
    (proxy.cpu_time().expect("/proc") - before) / (2 * ROUND_TRIPS)
}

#[test]
#[ignore = "a measurement: run with --release --ignored --nocapture"]
fn cpu_per_message_by_transport_and_handshakes_per_second() {
    let pki = Pki::new("perf");
    let config = format!(
        "listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\", \"tls:127.0.0.1:0\", \
         \"ws:127.0.0.1:0\", \"wss:127.0.0.1:0\"]\nworkers = 1\nmetrics = \"off\"\n\
         log-level = \"warn\"\n[tls]\ncertificate = {:?}\nkey = {:?}\nca = {:?}\nsystem-roots = false\n",
        pki.cert, pki.key, pki.ca
    );
    let file = pki.dir.join("perf.toml");
    std::fs::write(&file, config).unwrap();
    let proxy = Ferrovia::start(
        &["--config", file.to_str().unwrap(), "--log-level", "info"],
        5,
    );
    let (tcp, tls, ws_addr, wss_addr) = (
        proxy.addrs[1],
        proxy.addrs[2],
        proxy.addrs[3],
        proxy.addrs[4],
    );
    let family = Family::V4;
    let mut figures = Vec::new();

    // TCP → TCP.
    {
        let next = NextHop::bind(family);
        let mut client = SipStream::connect(tcp);
        let request =
            invite_over("TCP", client.local_addr(), next.addr(), "tcp", "perf-tcp").into_bytes();
        client.send(&request);
        let mut hop = next.accept();
        let fwd = hop.recv();
        let answer = response(&fwd, 200, "OK").into_bytes();
        hop.send(&answer);
        let back = client.recv();
        let (mut f, mut b) = (vec![0; fwd.len()], vec![0; back.len()]);
        figures.push((
            "TCP → TCP",
            per_message(&proxy, &mut || {
                client.stream.write_all(&request).unwrap();
                hop.stream.read_exact(&mut f).unwrap();
                hop.stream.write_all(&answer).unwrap();
                client.stream.read_exact(&mut b).unwrap();
            }),
        ));
    }
    // TLS → TLS.
    {
        let next = TlsNextHop::bind(family, &pki);
        let mut client =
            SipConn::new(tls_connect(tls, pki.client_config(false), "localhost").unwrap());
        let me = client.stream.sock.local_addr().unwrap();
        let request = invite_over("TLS", me, next.addr(), "tls", "perf-tls").into_bytes();
        client.send(&request);
        let mut hop = next.accept();
        let fwd = hop.recv();
        let answer = response(&fwd, 200, "OK").into_bytes();
        hop.send(&answer);
        let back = client.recv();
        let (mut f, mut b) = (vec![0; fwd.len()], vec![0; back.len()]);
        figures.push((
            "TLS → TLS",
            per_message(&proxy, &mut || {
                client.stream.write_all(&request).unwrap();
                hop.stream.read_exact(&mut f).unwrap();
                hop.stream.write_all(&answer).unwrap();
                client.stream.read_exact(&mut b).unwrap();
            }),
        ));
    }
    // WS and WSS → TCP.
    for (name, addr, tls) in [
        ("WS → TCP", ws_addr, None),
        ("WSS → TCP", wss_addr, Some(pki.client_config(false))),
    ] {
        let next = NextHop::bind(family);
        let mut ws = ws_connect(addr, tls, Some("sip"), None).unwrap();
        let me = "127.0.0.1:9".parse().unwrap();
        let request = invite_over("WS", me, next.addr(), "tcp", "perf-ws");
        ws.send(Message::text(request.clone())).unwrap();
        let mut hop = next.accept();
        let fwd = hop.recv();
        let answer = response(&fwd, 200, "OK").into_bytes();
        hop.send(&answer);
        ws.read().unwrap();
        let mut f = vec![0; fwd.len()];
        let message = Message::text(request);
        figures.push((
            name,
            per_message(&proxy, &mut || {
                ws.send(message.clone()).unwrap();
                hop.stream.read_exact(&mut f).unwrap();
                hop.stream.write_all(&answer).unwrap();
                ws.read().unwrap();
            }),
        ));
    }
    let tcp_ns = figures[0].1.as_nanos() as f64;
    for (name, cpu) in &figures {
        eprintln!(
            "{name:10} {:>6} ns CPU per message  ({:.2}× TCP)",
            cpu.as_nanos(),
            cpu.as_nanos() as f64 / tcp_ns
        );
    }

    // TLS handshakes, full and resumed (the client config keeps the tickets it was sent).
    let handshake = |config| {
        let mut c = tls_connect(tls, config, "localhost").unwrap();
        // One round trip: the proxy has finished its side, and the client has read the
        // session tickets that follow a TLS 1.3 handshake.
        let me = c.sock.local_addr().unwrap();
        let ping = format!(
            "OPTIONS sip:{tls} SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bK-h\r\nMax-Forwards: 70\r\n\
             From: <sip:p@t>;tag=h\r\nTo: <sip:{tls}>\r\nCall-ID: h@t\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        c.write_all(ping.as_bytes()).unwrap();
        let mut buf = [0u8; 1024];
        let _ = c.read(&mut buf).unwrap();
        c.conn.handshake_kind()
    };
    for resumed in [false, true] {
        let config = pki.client_config(false);
        if resumed {
            handshake(config.clone()); // the first, for tickets
        }
        let (cpu, start) = (proxy.cpu_time().unwrap(), Instant::now());
        for _ in 0..HANDSHAKES {
            let fresh = if resumed {
                config.clone()
            } else {
                pki.client_config(false)
            };
            let kind = handshake(fresh);
            assert_eq!(kind == Some(rustls::HandshakeKind::Resumed), resumed);
        }
        let wall = start.elapsed();
        let cpu = (proxy.cpu_time().unwrap() - cpu) / HANDSHAKES;
        eprintln!(
            "TLS handshake {}: {:.0}/s one connection after another (with a round trip), {} µs proxy CPU each ({:.0}/s per core)",
            if resumed { "resumed" } else { "full   " },
            HANDSHAKES as f64 / wall.as_secs_f64(),
            cpu.as_micros(),
            1e6 / cpu.as_micros().max(1) as f64
        );
    }
    let _ = proxy.terminate();
}

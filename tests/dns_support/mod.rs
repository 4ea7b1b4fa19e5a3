//! A real DNS server for the DNS tests: Debian's dnsmasq, started by the test as its child on
//! a loopback port with the records the test gives, killed (by its own PID) when dropped.
//! Skipped with a message when dnsmasq is missing, unless FERROVIA_REQUIRE_TOOLS is set.

#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrovia::dns::wire::{self, Kind};

const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// Whether dnsmasq is installed; fails the test under FERROVIA_REQUIRE_TOOLS=1 when not.
pub fn dnsmasq_present(test: &str) -> bool {
    let found = Command::new(DNSMASQ)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("FERROVIA_REQUIRE_TOOLS").is_none(),
            "dnsmasq is not installed: apt-get install dnsmasq-base"
        );
        eprintln!("{test}: skipped: {DNSMASQ} is not installed");
    }
    found
}

/// A running dnsmasq answering for `.test` only (NXDOMAIN for other `.test` names, REFUSED
/// for the rest: no upstream, no /etc/hosts, no config file).
pub struct Dnsmasq {
    child: Child,
    pub addr: SocketAddr,
}

impl Dnsmasq {
    /// Starts dnsmasq on `port` with `records` (`--srv-host=...`, `--naptr-record=...`,
    /// `--host-record=...`) and `ttl` seconds on its local records; waits until it answers.
    pub fn start(port: u16, records: &[String], ttl: u32) -> Dnsmasq {
        let mut command = Command::new(DNSMASQ);
        command
            .args([
                "--no-daemon",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--local=/test/",
                &format!("--local-ttl={ttl}"),
            ])
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("start dnsmasq");
        let server = Dnsmasq {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a DNS client");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set a timeout");
        let query = wire::query(7, "ready.test", Kind::A).expect("a query");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 512];
        loop {
            let _ = socket.send_to(&query, self.addr);
            if socket.recv_from(&mut buf).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not answer on {}",
                self.addr
            );
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--host-record=NAME,IP,TTL`.
pub fn host(name: &str, ip: &str, ttl: u32) -> String {
    format!("--host-record={name},{ip},{ttl}")
}

/// `--srv-host=SRVNAME,TARGET,PORT,PRIORITY,WEIGHT`.
pub fn srv(name: &str, target: &str, port: u16, priority: u16, weight: u16) -> String {
    format!("--srv-host={name},{target},{port},{priority},{weight}")
}

/// `--naptr-record=NAME,ORDER,PREFERENCE,S,SERVICE,,REPLACEMENT`.
pub fn naptr(name: &str, order: u16, preference: u16, service: &str, replacement: &str) -> String {
    format!("--naptr-record={name},{order},{preference},S,{service},,{replacement}")
}

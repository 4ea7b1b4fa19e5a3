//! What the protection tests share: the worked example's settings routed by Request-URI (so a
//! test's own peers are the destinations), the metrics address from the log, HTTP (from
//! `runtime_support`), and the proxy's resident memory.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use super::runtime_support::http;
use super::runtime_support::process::Ferrovia;

pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/protection/edge.toml");

/// The example's `[protect]` without `route-all-to`, plus `extra` lines, in a scratch file.
pub fn example_config(name: &str, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("route-all-to"))
        .collect();
    let text = format!("{extra}\n{}\n", kept.join("\n"));
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the binary with `config` on 127.0.0.1 (port 0), metrics on a free port, 2 workers;
/// returns it and its metrics address.
pub fn start(config: &Path) -> (Ferrovia, SocketAddr) {
    let mut proxy = Ferrovia::start(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "udp:127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--workers",
            "2",
        ],
        1,
    );
    let line = proxy.await_line("metrics on http://");
    let metrics = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {line:?}"));
    (proxy, metrics)
}

/// Whether `/bans` lists `ip`.
pub fn banned(metrics: SocketAddr, ip: &str) -> bool {
    http(metrics, "GET", "/bans")
        .1
        .contains(&format!("\"source\": \"{ip}\""))
}

/// The process's resident memory in KiB (`VmRSS`), Linux only.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A number in `/stats`' `protect` section, e.g. `tracked_sources`.
pub fn protect_figure(metrics: SocketAddr, key: &str) -> u64 {
    let (_, body) = http(metrics, "GET", "/stats");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["protect"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no protect.{key} in {body}"))
}

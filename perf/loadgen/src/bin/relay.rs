//! `ferrovia-relay`: the bare UDP relay (the I/O floor). See `ferrovia_loadgen::relay`.
//!
//! Prints a ready line on stderr once bound, relays until `--duration` ends or SIGTERM/SIGINT,
//! then prints its counts as one JSON line on stdout.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ferrovia_loadgen::net::require_loopback;
use ferrovia_loadgen::relay::{self, RelayConfig};
use ferrovia_loadgen::stop;

/// A bare UDP relay: forwards datagrams unchanged, one upstream socket per client (NAT style).
#[derive(Parser, Debug)]
#[command(name = "ferrovia-relay", version)]
struct Cli {
    /// Address to receive clients' datagrams on, e.g. 127.0.0.1:5070 (loopback only).
    #[arg(long)]
    listen: SocketAddr,
    /// Where every client's datagrams go, e.g. 127.0.0.1:5080 (loopback only).
    #[arg(long)]
    upstream: SocketAddr,
    /// Worker threads, each with its own SO_REUSEPORT socket on --listen.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Datagrams per recvmmsg/sendmmsg call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Most clients tracked at once (per thread); new clients beyond it are dropped.
    #[arg(long, default_value_t = 4096)]
    max_flows: usize,
    /// A client silent this long loses its upstream socket.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
    /// Stop after this many seconds even without a signal.
    #[arg(long, default_value_t = 900)]
    duration: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let addrs = require_loopback("--listen", cli.listen)
        .and_then(|_| require_loopback("--upstream", cli.upstream));
    if let Err(message) = addrs {
        eprintln!("ferrovia-relay: {message}");
        return ExitCode::from(2);
    }
    match serve(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrovia-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: &Cli) -> std::io::Result<()> {
    let config = RelayConfig {
        listen: cli.listen,
        upstream: cli.upstream,
        threads: cli.threads.max(1),
        batch: cli.batch.max(1),
        max_flows: cli.max_flows.max(1),
        idle: Duration::from_secs(cli.idle_secs),
        duration: Duration::from_secs(cli.duration),
    };
    let stop = stop::on_signals()?;
    let listeners = relay::bind(&config)?;
    let bound = listeners[0].local_addr()?; // bind() returns at least one socket
    eprintln!(
        "ferrovia-relay: ready on {bound} -> {}, {} thread(s)",
        config.upstream, config.threads
    );
    let counts = relay::run(listeners, &config, stop)?;
    println!("{}", counts.to_json());
    Ok(())
}

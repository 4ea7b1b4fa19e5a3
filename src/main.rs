//! The `ferrovia` binary: parse the command line, start the workers and the statistics, wait
//! for SIGINT or SIGTERM (SIGHUP reloads the TLS certificates), stop cleanly and print a summary (and the `.hgrm` file if asked).
//!
//! Exit codes: 0 after a clean stop, 2 for bad flags or configuration, 1 when the system
//! refuses (an address in use, a worker that died).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use log::{error, info};

use ferrovia::cli::{Cli, Command, RunArgs, StatsArgs};
use ferrovia::service::Service;
use ferrovia::settings::Settings;
use ferrovia::stats;

/// How often the main thread looks for a signal or a worker that stopped on its own.
const WATCH_TICK: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Stats(args)) => stats(&args),
        None => run(&cli.run),
    }
}

fn run(args: &RunArgs) -> ExitCode {
    let settings = match Settings::load(&args.overrides()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ferrovia: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);
    let (stop, reload) = match watch_signals() {
        Ok(flags) => flags,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let service = match Service::start(&settings) {
        Ok(service) => service,
        Err(e) => {
            error!("{e}");
            return if e.is_config() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            };
        }
    };
    if let Some(addr) = service.metrics_addr() {
        info!("metrics on http://{addr}/metrics, /stats and /stats.hgrm");
    }
    while !stop.load(Ordering::Acquire) && service.is_running() {
        std::thread::park_timeout(WATCH_TICK);
        if reload.swap(false, Ordering::AcqRel) {
            match service.reload_certificates() {
                Ok(true) => info!("SIGHUP: certificates reloaded for new TLS connections"),
                Ok(false) => info!("SIGHUP: no TLS listener, nothing to reload"),
                Err(e) => error!("SIGHUP: certificates not reloaded, the old ones stay: {e}"),
            }
        }
    }
    let crashed = !service.is_running();
    info!("stopping");
    let stopped = service.shutdown();
    eprint!("{}", stopped.summary());
    if let Some(path) = &settings.hgrm
        && let Err(e) = std::fs::write(path, stopped.snapshot.hgrm())
    {
        error!("cannot write {}: {e}", path.display());
    }
    if crashed || stopped.failed_workers > 0 {
        error!("a worker stopped unexpectedly");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Logs on stderr at the configured level; `RUST_LOG` may refine it per module.
fn init_logging(settings: &Settings) {
    env_logger::Builder::new()
        .filter_level(settings.log_level)
        .parse_env("RUST_LOG")
        .target(env_logger::Target::Stderr)
        .init();
}

/// A flag set by SIGINT or SIGTERM (stop), and one set by SIGHUP (reload certificates).
fn watch_signals() -> std::io::Result<(Arc<AtomicBool>, Arc<AtomicBool>)> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))?;
    Ok((flag, reload))
}

/// `ferrovia stats`: a running proxy's counters and latency percentiles, read from its
/// metrics endpoint.
fn stats(args: &StatsArgs) -> ExitCode {
    match stats::client::run(args.metrics) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrovia stats: {e}");
            ExitCode::FAILURE
        }
    }
}

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

use ferrovia::cli::{Cli, Command, PasswdArgs, RouteArgs, RunArgs, StatsArgs};
use ferrovia::service::Service;
use ferrovia::settings::Settings;
use ferrovia::stats;

/// How often the main thread looks for a signal or a worker that stopped on its own.
const WATCH_TICK: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Stats(args)) => stats(&args),
        Some(Command::Check(args)) => match ferrovia::policy_tools::check(&args.config) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ferrovia check: {e}");
                ExitCode::from(2)
            }
        },
        Some(Command::Route(args)) => route(&args),
        Some(Command::Passwd(args)) => passwd(&args),
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
        // SIGHUP: reload the policy (the service logs the result; a bad file changes nothing)
        // and the TLS certificates (for new connections; established ones keep theirs).
        if reload.swap(false, Ordering::AcqRel) {
            let _ = service.reload();
            match service.reload_certificates() {
                Ok(true) => info!("SIGHUP: certificates reloaded for new TLS connections"),
                Ok(false) => {}
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

/// A flag set by SIGINT or SIGTERM, and one set by SIGHUP (reload the policy and the TLS
/// certificates; never a stop).
fn watch_signals() -> std::io::Result<(Arc<AtomicBool>, Arc<AtomicBool>)> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))?;
    Ok((flag, reload))
}

/// `ferrovia route`: one request from standard input through the policy and the core.
fn route(args: &RouteArgs) -> ExitCode {
    let mut message = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut message) {
        eprintln!("ferrovia route: cannot read standard input: {e}");
        return ExitCode::FAILURE;
    }
    match ferrovia::policy_tools::route(&args.config, args.source, args.transport, &message) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrovia route: {e}");
            ExitCode::from(2)
        }
    }
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

/// `ferrovia passwd`: writes the user's HA1 lines into the users file.
fn passwd(args: &PasswdArgs) -> ExitCode {
    use ferrovia::registrar::{entry_lines, replace_entry};
    let password = match &args.password {
        Some(p) => p.clone(),
        None => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("ferrovia passwd: cannot read the password: {e}");
                return ExitCode::FAILURE;
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if args.user.is_empty() || args.user.contains(':') || args.realm.contains(':') {
        eprintln!("ferrovia passwd: the user and realm must be non-empty and without ':'");
        return ExitCode::from(2);
    }
    let old = match std::fs::read_to_string(&args.users) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            eprintln!("ferrovia passwd: cannot read {}: {e}", args.users.display());
            return ExitCode::FAILURE;
        }
    };
    let lines = entry_lines(&args.user, &args.realm, &password);
    let new = replace_entry(&old, &args.user, &args.realm, &lines);
    match std::fs::write(&args.users, new) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "ferrovia passwd: cannot write {}: {e}",
                args.users.display()
            );
            ExitCode::FAILURE
        }
    }
}

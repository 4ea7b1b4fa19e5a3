//! The command line: `ferrovia [run flags]` starts the proxy; `ferrovia stats` reads a
//! running one. Parsing only: [`Settings::load`](crate::settings::Settings::load) merges the
//! flags with the config file. Bad flags make clap print a message and exit with code 2.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use log::LevelFilter;

use crate::proxy::{HostPort, NextHop};
use crate::settings::{
    ListenAddr, Metrics, Overrides, parse_host_port, parse_log_level, parse_next_hop, parse_workers,
};

/// ferrovia: a multi-core stateless SIP edge proxy.
///
/// With no flags it listens on UDP 0.0.0.0:5060 with one worker per core and forwards each
/// request by its Route or Request-URI, and each response by its Via (over TCP, on the
/// connection its request came in on). Stop it with Ctrl-C or
/// SIGTERM; it prints a summary of what it forwarded and dropped.
#[derive(Debug, Parser)]
#[command(name = "ferrovia", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What to do instead of running the proxy.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a running proxy's counters and latency percentiles.
    Stats(StatsArgs),
    /// Validate a config file: settings, routing policy and scripts. Exits 2 with file:line
    /// on the first error. Example: ferrovia check --config /etc/ferrovia.toml
    Check(CheckArgs),
    /// Show what the routing policy does with one request read from standard input (the
    /// matched rule, the action, the rewritten Request-URI, the destination) without
    /// starting the proxy. Example: ferrovia route --config edge.toml --source 127.0.0.3:5060 < invite.txt
    Route(RouteArgs),
    /// Write a user's digest secrets (an MD5 and a SHA-256 HA1) into a users file,
    /// replacing the user's old lines. The password comes from --password or, without it,
    /// the first line of standard input.
    Passwd(PasswdArgs),
}

/// Flags of `ferrovia passwd`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// The users file ([registrar] users); created when missing. Example: --users users
    #[arg(long, value_name = "FILE")]
    pub users: PathBuf,
    /// The realm ([registrar] realm). Example: --realm edge.example
    #[arg(long, value_name = "REALM")]
    pub realm: String,
    /// The password (visible to other local users in the process list: prefer stdin).
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// The user name. Example: alice
    pub user: String,
}

/// Flags of `ferrovia check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config file to validate.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Flags of `ferrovia route`.
#[derive(Debug, Args)]
pub struct RouteArgs {
    /// The config file whose policy decides.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Where the request comes from.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:5060")]
    pub source: SocketAddr,
    /// The transport it arrives over: udp or tcp.
    #[arg(long, value_name = "udp|tcp", default_value = "udp", value_parser = parse_transport)]
    pub transport: crate::sip::Transport,
}

fn parse_transport(text: &str) -> Result<crate::sip::Transport, String> {
    crate::sip::Transport::from_token(text.as_bytes())
        .filter(|t| matches!(t, crate::sip::Transport::Udp | crate::sip::Transport::Tcp))
        .ok_or_else(|| format!("{text:?}: expected udp or tcp"))
}

/// Flags of `ferrovia stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The running proxy's metrics address. Example: --metrics 127.0.0.1:9090
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:9090")]
    pub metrics: SocketAddr,
}

/// Flags that run the proxy. Each one overrides the same setting of `--config`.
#[derive(Clone, Debug, Default, Args)]
pub struct RunArgs {
    /// Address to receive SIP on, over UDP, TCP, TLS, WebSocket (ws) or secure WebSocket
    /// (wss); repeat for several (IPv6 in brackets). tls: and wss: need [tls] certificate
    /// and key in --config. Example: --listen udp:192.0.2.10:5060 --listen
    /// tls:192.0.2.10:5061 --listen wss:[::1]:443 [default: udp:0.0.0.0:5060]
    #[arg(long, value_name = "udp|tcp|tls|ws|wss:IP:PORT", value_parser = parse_listen)]
    pub listen: Vec<ListenAddr>,

    /// Host (and port) to write in Via and Record-Route instead of the bound address, when
    /// bound to 0.0.0.0 or behind NAT. Example: --advertise sip.example.net:5060
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_host_port)]
    pub advertise: Option<HostPort>,

    /// Worker threads, each pinned to a core with its own sockets. Example: --workers 4
    /// [default: the number of available cores]
    #[arg(long, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,

    /// Insert Record-Route so in-dialog requests (ACK, BYE) come back through this proxy.
    /// Example: --record-route
    #[arg(long)]
    pub record_route: bool,

    /// Where requests addressed to this proxy itself go. Example: --next-hop sip:10.0.0.9:5060
    #[arg(long, value_name = "sip:HOST:PORT", value_parser = parse_next_hop)]
    pub next_hop: Option<NextHop>,

    /// Address of the HTTP metrics endpoint, or off. Example: --metrics 127.0.0.1:9191
    /// [default: 127.0.0.1:9090]
    #[arg(long, value_name = "IP:PORT|off", value_parser = parse_metrics)]
    pub metrics: Option<Metrics>,

    /// TOML file with the same settings (keys named like the flags: listen, advertise,
    /// workers, record-route, next-hop, metrics, hgrm, log-level; plus aliases, [hosts],
    /// [socket], [tcp] limits and timeouts, [rewrite-contact] and [parking]; and the routing
    /// policy: [policy], [sets], [[route]], see docs/POLICY.md). Flags override it; SIGHUP
    /// reloads its policy. Example: --config /etc/ferrovia.toml
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Rewrite the Contact of forwarded requests and responses to sip:<token>@<this proxy>,
    /// and send requests for such a URI to the original contact over the flow it came from
    /// (clients behind NAT). Tune it in the config file's [rewrite-contact] table.
    /// Example: --rewrite-contact
    #[arg(long)]
    pub rewrite_contact: bool,

    /// At exit, write the latency percentile distribution (HdrHistogram .hgrm text, values in
    /// microseconds) to this file. Example: --hgrm /tmp/ferrovia.hgrm
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,

    /// Log verbosity on stderr: off, error, warn, info, debug or trace.
    /// Example: --log-level debug [default: info]
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<LevelFilter>,
}

impl RunArgs {
    /// The flags as settings overrides (applied over the config file by
    /// [`Settings::load`](crate::settings::Settings::load)).
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            listen: self.listen.clone(),
            advertise: self.advertise.clone(),
            workers: self.workers,
            record_route: self.record_route,
            next_hop: self.next_hop.clone(),
            metrics: self.metrics,
            rewrite_contact: self.rewrite_contact,
            hgrm: self.hgrm.clone(),
            log_level: self.log_level,
        }
    }
}

fn parse_listen(text: &str) -> Result<ListenAddr, crate::settings::SettingsError> {
    text.parse()
}

fn parse_metrics(text: &str) -> Result<Metrics, crate::settings::SettingsError> {
    text.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_flags_parse() {
        let cli = Cli::try_parse_from([
            "ferrovia",
            "--listen",
            "udp:127.0.0.1:5070",
            "--listen",
            "udp:[::1]:5070",
            "--listen",
            "tcp:[::1]:5070",
            "--advertise",
            "sip.example.net",
            "--workers",
            "2",
            "--record-route",
            "--next-hop",
            "sip:10.0.0.9:5060",
            "--metrics",
            "off",
            "--log-level",
            "warn",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.listen.len(), 3);
        assert_eq!(cli.run.workers, Some(2));
        assert!(cli.run.record_route);
        assert_eq!(cli.run.metrics, Some(Metrics::Off));
        assert_eq!(cli.run.log_level, Some(LevelFilter::Warn));
    }

    #[test]
    fn stats_is_a_subcommand_that_excludes_run_flags() {
        let cli =
            Cli::try_parse_from(["ferrovia", "stats", "--metrics", "127.0.0.1:9191"]).unwrap();
        let Some(Command::Stats(args)) = cli.command else {
            panic!("expected the stats subcommand");
        };
        assert_eq!(args.metrics, "127.0.0.1:9191".parse().unwrap());
        assert!(Cli::try_parse_from(["ferrovia", "--workers", "2", "stats"]).is_err());
    }

    #[test]
    fn bad_values_are_rejected() {
        for args in [
            &["ferrovia", "--workers", "0"][..],
            &["ferrovia", "--listen", "127.0.0.1:5060"],
            &["ferrovia", "--next-hop", "10.0.0.9"],
            &["ferrovia", "--log-level", "loud"],
            &["ferrovia", "--bogus"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}

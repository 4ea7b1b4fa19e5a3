//! `ferrovia-loadgen`: the SIP reflector, the load generator, the zero-loss rate search and the
//! latency plot. Each subcommand prints a human summary on stderr and one JSON line on stdout.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ferrovia_loadgen::hgrm::{distribution_text, parse_distribution};
use ferrovia_loadgen::net::require_loopback;
use ferrovia_loadgen::plot::{Series, svg};
use ferrovia_loadgen::reflector::{self, ReflectorConfig};
use ferrovia_loadgen::register_floor;
use ferrovia_loadgen::search::{SearchConfig, search};
use ferrovia_loadgen::sender::{SendPlan, SendReport, Sender};
use ferrovia_loadgen::sip::{Method, RequestSpec, RunId};
use ferrovia_loadgen::{stop, stream};

/// SIP load over UDP on loopback: reflect, send, search the zero-loss rate, plot latencies.
#[derive(Parser, Debug)]
#[command(name = "ferrovia-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Answer every request (but ACK) with a stateless 200 OK, back to its source.
    Reflect(ReflectArgs),
    /// The register floor: answer REGISTER with a canned 401 (no credentials) or 200 (with
    /// them), one socket, one thread, no table and no digest check.
    RegisterFloor(FloorArgs),
    /// Offer a fixed rate of requests through a forwarder to the reflector, for a bounded run.
    Send(SendArgs),
    /// Find the highest rate a forwarder sustains with zero loss (bounded steps).
    Search(SearchArgs),
    /// Draw .hgrm percentile distributions into one SVG chart.
    Plot(PlotArgs),
    /// Closed-loop load over TCP, TLS, WS or WSS connections through a forwarder to a next
    /// hop this command plays (TCP or TLS); with --pid, the forwarder's CPU per message.
    Stream(StreamArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StreamTransport {
    Tcp,
    Tls,
    Ws,
    Wss,
}

#[derive(Args, Debug)]
struct StreamArgs {
    /// The forwarder's listener for --transport, e.g. 127.0.0.1:5061 (loopback only).
    #[arg(long)]
    target: SocketAddr,
    /// How the clients reach the forwarder.
    #[arg(long, value_enum)]
    transport: StreamTransport,
    /// The next hop (played here) speaks TLS; the forwarder must trust --ca for 127.0.0.1.
    #[arg(long)]
    next_tls: bool,
    /// Client connections (one thread each).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Requests in all (or TLS handshakes with --handshakes).
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Longest run, seconds.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Pad each request to at least this many bytes.
    #[arg(long, default_value_t = 900)]
    size: usize,
    /// The CA bundle (PEM) that signed the forwarder's and the next hop's certificates.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The next hop's certificate chain and key (PEM; it must name IP 127.0.0.1).
    #[arg(long)]
    next_cert: Option<PathBuf>,
    #[arg(long)]
    next_key: Option<PathBuf>,
    /// The name the forwarder's certificate is verified against.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// The forwarder's process id: its CPU time over the run is reported.
    #[arg(long)]
    pid: Option<u32>,
    /// Instead of messages: TLS handshakes, full or resumed, one OPTIONS round trip each.
    #[arg(long, value_enum)]
    handshakes: Option<HandshakeMode>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum HandshakeMode {
    Full,
    Resumed,
}

#[derive(Args, Debug)]
struct ReflectArgs {
    /// Address to answer on, e.g. 127.0.0.1:5080 (loopback only); repeat it to answer on
    /// several addresses from the same thread(s), as several destinations in one process.
    #[arg(long, required = true)]
    listen: Vec<SocketAddr>,
    /// Threads, each with its own SO_REUSEPORT socket on each --listen.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Datagrams per recvmmsg/sendmmsg call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Stop after this many seconds even without a signal.
    #[arg(long, default_value_t = 900)]
    duration: u64,
}

#[derive(Args, Debug)]
struct FloorArgs {
    /// Address to answer on, e.g. 127.0.0.1:5090 (loopback only).
    #[arg(long)]
    listen: SocketAddr,
    /// Stop after this many answers.
    #[arg(long, default_value_t = 10_000_000)]
    count: u64,
    /// Stop after this many seconds even without a signal.
    #[arg(long, default_value_t = 900)]
    duration: u32,
    /// The I/O shape: a blocking socket (recvfrom + sendto per datagram), or ferrovia's
    /// workers' (edge-triggered epoll, recvmmsg / sendmmsg batches).
    #[arg(long, value_enum, default_value_t = FloorIo::Blocking)]
    io: FloorIo,
    /// With --io epoll: datagrams per recvmmsg / sendmmsg call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// With --io epoll: the epoll_wait timeout in milliseconds (0: wait without one).
    #[arg(long, default_value_t = 250)]
    poll_timeout_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FloorIo {
    Blocking,
    Epoll,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MethodArg {
    Invite,
    Options,
}

#[derive(Args, Debug, Clone)]
struct LoadArgs {
    /// The forwarder to send through, e.g. 127.0.0.1:5070 (loopback only).
    #[arg(long)]
    target: SocketAddr,
    /// The reflector, named in the Request-URI and Route, e.g. 127.0.0.1:5080 (loopback only).
    #[arg(long)]
    reflector: SocketAddr,
    /// Flows: UDP sockets, each its own source port.
    #[arg(long, default_value_t = 64)]
    flows: usize,
    /// Requests per sendmmsg call (per flow burst).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Request method: INVITE (with an SDP offer) or OPTIONS.
    #[arg(long, value_enum, default_value_t = MethodArg::Invite)]
    method: MethodArg,
    /// Pad each request to at least this many bytes (INVITE: SDP attribute; OPTIONS: header).
    #[arg(long, default_value_t = 900)]
    size: usize,
    /// Send from this loopback address (e.g. 127.0.0.2: one source among many) instead of
    /// 127.0.0.1 / ::1.
    #[arg(long)]
    source: Option<IpAddr>,
    /// Leave out `Route: <sip:REFLECTOR;lr>` (forward by Request-URI only).
    #[arg(long)]
    no_route: bool,
    /// Milliseconds to wait for answers after the last request.
    #[arg(long, default_value_t = 1000)]
    grace_ms: u64,
}

#[derive(Args, Debug)]
struct SendArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Offered requests per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Longest sending time, seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Most requests to send (default: rate × duration).
    #[arg(long)]
    count: Option<u64>,
    /// Write the round-trip percentile distribution (.hgrm, µs) here.
    #[arg(long)]
    hgrm: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SearchArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// First rate tried, requests/s.
    #[arg(long, default_value_t = 10_000)]
    start_rate: u64,
    /// Never offer more than this, requests/s.
    #[arg(long, default_value_t = 1_000_000)]
    max_rate: u64,
    /// Length of each step, seconds.
    #[arg(long, default_value_t = 2.0)]
    step_secs: f64,
    /// Most steps.
    #[arg(long, default_value_t = 10)]
    max_steps: u32,
    /// Stop when the passing and failing rates are this close (fraction of the failing one).
    #[arg(long, default_value_t = 0.05)]
    precision: f64,
    /// Fraction of requests a passing step may lose.
    #[arg(long, default_value_t = 0.0)]
    loss_tolerance: f64,
    /// Try a failing rate again this many times; it passes if any try does.
    #[arg(long, default_value_t = 1)]
    retries: u32,
    /// Write the best step's round-trip distribution (.hgrm, µs) here.
    #[arg(long)]
    hgrm: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct PlotArgs {
    /// The SVG file to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "Round-trip latency by percentile")]
    title: String,
    /// Series as NAME=FILE.hgrm, drawn in this order.
    #[arg(required = true)]
    series: Vec<String>,
}

/// Longest run any subcommand accepts, seconds.
const MAX_SECS: f64 = 3600.0;
/// Most requests in one run (the answer tracker holds 8 bytes per request).
const MAX_COUNT: u64 = 20_000_000;
/// Most flows (sockets) and requests per system call a sender opens / uses.
const MAX_FLOWS: usize = 4096;
const MAX_BATCH: usize = 1024;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Reflect(args) => reflect(args),
        Command::RegisterFloor(args) => register_floor(args),
        Command::Send(args) => send(args),
        Command::Search(args) => run_search(args),
        Command::Plot(args) => plot(args),
        Command::Stream(args) => stream_load(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("ferrovia-loadgen: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Io(e)) => {
            eprintln!("ferrovia-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Usage(String),
    Io(std::io::Error),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Io(e)
    }
}

fn stream_load(args: &StreamArgs) -> Result<(), Failure> {
    require_loopback("--target", args.target).map_err(Failure::Usage)?;
    if !(0.0..=MAX_SECS).contains(&args.duration) || args.count > MAX_COUNT {
        return Err(Failure::Usage("--duration or --count out of bounds".into()));
    }
    if args.connections == 0 || args.connections > 1024 || args.window == 0 || args.window > 1024 {
        return Err(Failure::Usage(
            "--connections and --window: 1 to 1024".into(),
        ));
    }
    let pems = args.ca.clone().map(|ca| stream::Pems {
        ca,
        cert: args.next_cert.clone().unwrap_or_default(),
        key: args.next_key.clone().unwrap_or_default(),
    });
    let config = stream::StreamConfig {
        proxy: args.target,
        transport: match args.transport {
            StreamTransport::Tcp => stream::Transport::Tcp,
            StreamTransport::Tls => stream::Transport::Tls,
            StreamTransport::Ws => stream::Transport::Ws,
            StreamTransport::Wss => stream::Transport::Wss,
        },
        next_tls: args.next_tls,
        connections: args.connections,
        window: args.window,
        count: args.count,
        duration: Duration::from_secs_f64(args.duration),
        size: args.size,
        pems,
        server_name: args.server_name.clone(),
        pid: args.pid,
    };
    let stop = stop::on_signals()?;
    let json = match args.handshakes {
        Some(mode) => {
            let report = stream::handshakes(&config, mode == HandshakeMode::Resumed, stop)?;
            eprintln!("{report:?}");
            report.to_json()
        }
        None => {
            let report = stream::run(&config, stop)?;
            eprintln!("{report:?}");
            report.to_json()
        }
    };
    println!("{json}");
    Ok(())
}

fn register_floor(args: &FloorArgs) -> Result<(), Failure> {
    require_loopback("--listen", args.listen).map_err(Failure::Usage)?;
    if args.count > MAX_COUNT || f64::from(args.duration) > MAX_SECS {
        return Err(Failure::Usage("--duration or --count out of bounds".into()));
    }
    stop::on_signals()?;
    let stop = stop::alarm_after(args.duration)?;
    let socket = register_floor::bind(args.listen)?;
    eprintln!(
        "ferrovia-loadgen register-floor: ready on {}",
        socket.local_addr()?
    );
    let counts = match args.io {
        FloorIo::Blocking => register_floor::serve(&socket, args.count, stop)?,
        FloorIo::Epoll => {
            let timeout =
                (args.poll_timeout_ms > 0).then(|| Duration::from_millis(args.poll_timeout_ms));
            let batch = args.batch.clamp(1, MAX_BATCH);
            register_floor::serve_epoll(socket, batch, timeout, args.count, stop)?
        }
    };
    eprintln!("{counts:?}");
    println!("{}", counts.to_json());
    Ok(())
}

fn reflect(args: &ReflectArgs) -> Result<(), Failure> {
    for &listen in &args.listen {
        require_loopback("--listen", listen).map_err(Failure::Usage)?;
    }
    let (&first, more) = args
        .listen
        .split_first()
        .ok_or_else(|| Failure::Usage("--listen is required".into()))?;
    let config = ReflectorConfig {
        listen: first,
        threads: args.threads.max(1),
        batch: args.batch.max(1),
        duration: Duration::from_secs(args.duration),
    };
    let stop = stop::on_signals()?;
    let sets = reflector::bind_many(&config, more)?;
    // bind_many() returns at least one set, each with one socket per address.
    let bound: Vec<String> = sets[0]
        .iter()
        .map(|s| s.local_addr().map(|a| a.to_string()))
        .collect::<Result<_, _>>()?;
    eprintln!(
        "ferrovia-loadgen reflect: ready on {}, {} thread(s)",
        bound.join(" "),
        config.threads
    );
    let counts = reflector::run_sets(sets, &config, stop)?;
    eprintln!(
        "reflect: received {}, answered {}, acks {}, malformed {}",
        counts.received, counts.answered, counts.acks, counts.malformed
    );
    println!("{}", counts.to_json());
    Ok(())
}

fn seconds(what: &str, secs: f64) -> Result<Duration, Failure> {
    if !(secs > 0.0 && secs <= MAX_SECS) {
        return Err(Failure::Usage(format!(
            "{what} must be in (0, {MAX_SECS}] seconds"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn open_sender(load: &LoadArgs) -> Result<Sender, Failure> {
    require_loopback("--target", load.target).map_err(Failure::Usage)?;
    require_loopback("--reflector", load.reflector).map_err(Failure::Usage)?;
    if let Some(source) = load.source
        && !source.is_loopback()
    {
        return Err(Failure::Usage("--source must be a loopback address".into()));
    }
    let flows = load.flows.clamp(1, MAX_FLOWS);
    Ok(Sender::open_from(
        load.target,
        load.source,
        flows,
        load.batch.clamp(1, MAX_BATCH),
    )?)
}

fn plan(load: &LoadArgs, rate: u64, count: u64, duration: Duration) -> SendPlan {
    let method = match load.method {
        MethodArg::Invite => Method::Invite,
        MethodArg::Options => Method::Options,
    };
    SendPlan {
        spec: RequestSpec {
            method,
            reflector: load.reflector,
            route: !load.no_route,
            size: load.size,
            run: RunId(0),
        },
        rate: rate.max(1),
        count,
        duration,
        grace: Duration::from_millis(load.grace_ms.min(60_000)),
    }
}

fn send(args: &SendArgs) -> Result<(), Failure> {
    let duration = seconds("--duration", args.duration)?;
    let scheduled = (args.rate as f64 * duration.as_secs_f64()).ceil() as u64;
    let count = args.count.unwrap_or(scheduled).clamp(1, MAX_COUNT);
    let mut sender = open_sender(&args.load)?;
    let stop = stop::on_signals()?;
    let report = sender.run(&plan(&args.load, args.rate, count, duration), stop)?;
    eprintln!("{}", report.summary());
    write_hgrm(args.hgrm.as_ref(), &report)?;
    println!("{}", report.to_json());
    Ok(())
}

fn run_search(args: &SearchArgs) -> Result<(), Failure> {
    let step = seconds("--step-secs", args.step_secs)?;
    let mut sender = open_sender(&args.load)?;
    let stop: &AtomicBool = stop::on_signals()?;
    let config = SearchConfig {
        start_rate: args.start_rate.max(1),
        max_rate: args.max_rate.max(1),
        max_steps: args.max_steps.clamp(1, 40),
        precision: args.precision.clamp(0.001, 1.0),
        loss_tolerance: args.loss_tolerance.clamp(0.0, 1.0),
        retries: args.retries.min(5),
        settle: Duration::from_millis(300),
    };
    let step_plan = plan(&args.load, config.start_rate, 1, step);
    let report = search(&mut sender, &step_plan, &config, stop, |s| {
        let r = &s.report;
        eprintln!(
            "search: {:>8}/s  {}  sent {} lost {} offered {:.0}/s{}",
            s.rate,
            if s.passed { "pass" } else { "FAIL" },
            r.sent,
            r.lost,
            r.offered_per_sec(),
            if r.kept_up() {
                ""
            } else {
                " (generator behind)"
            }
        );
    })?;
    eprintln!(
        "search: highest zero-loss rate {}/s (limited by {:?})",
        report.best_rate, report.limit
    );
    if let Some(best) = report.best() {
        eprintln!("{}", best.report.summary());
        write_hgrm(args.hgrm.as_ref(), &best.report)?;
    }
    println!("{}", report.to_json());
    Ok(())
}

fn write_hgrm(path: Option<&PathBuf>, report: &SendReport) -> Result<(), Failure> {
    if let Some(path) = path {
        std::fs::write(path, distribution_text(&report.rtt))?;
    }
    Ok(())
}

fn plot(args: &PlotArgs) -> Result<(), Failure> {
    let mut series = Vec::new();
    for spec in &args.series {
        let Some((name, file)) = spec.split_once('=') else {
            return Err(Failure::Usage(format!(
                "series {spec:?} is not NAME=FILE.hgrm"
            )));
        };
        let points = parse_distribution(&std::fs::read_to_string(file)?);
        if points.is_empty() {
            eprintln!("plot: {file} has no percentile lines, skipped");
            continue;
        }
        series.push(Series {
            name: name.to_string(),
            points,
        });
    }
    std::fs::write(&args.out, svg(&args.title, &series))?;
    eprintln!(
        "plot: wrote {} ({} series)",
        args.out.display(),
        series.len()
    );
    println!(
        "{}",
        serde_json::json!({"mode": "plot", "out": args.out, "series": series.len()})
    );
    Ok(())
}

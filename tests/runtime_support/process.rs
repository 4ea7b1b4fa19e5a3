//! Child processes for tests: the ferrovia binary and sipp, killed on drop.

// Reading the clock tick rate and signalling a child need `libc` calls.
#![allow(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long a child may take to start or to stop.
pub const PROCESS_LIMIT: Duration = Duration::from_secs(20);

/// A running `ferrovia` binary with its stderr collected line by line.
pub struct Ferrovia {
    child: Option<Child>,
    lines: Receiver<String>,
    pub stderr: Vec<String>,
    /// The bound addresses from its "listening on udp:ADDR" / "tcp:ADDR" log lines.
    pub addrs: Vec<SocketAddr>,
}

impl Ferrovia {
    /// The binary's path.
    pub fn binary() -> &'static str {
        env!("CARGO_BIN_EXE_ferrovia")
    }

    /// Starts ferrovia with `args` and waits for `listeners` "listening on" lines.
    pub fn start(args: &[&str], listeners: usize) -> Ferrovia {
        let mut child = Command::new(Ferrovia::binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the ferrovia binary");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut proxy = Ferrovia {
            child: Some(child),
            lines,
            stderr: Vec::new(),
            addrs: Vec::new(),
        };
        proxy.await_listeners(listeners);
        proxy
    }

    fn await_listeners(&mut self, listeners: usize) {
        let deadline = Instant::now() + PROCESS_LIMIT;
        while self.addrs.len() < listeners {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = listening_addr(&line) {
                        self.addrs.push(addr);
                    }
                    self.stderr.push(line);
                }
                Err(_) => panic!(
                    "ferrovia did not start; stderr:\n{}",
                    self.stderr.join("\n")
                ),
            }
        }
    }

    /// Waits (bounded) for a stderr line containing `text` and returns it.
    pub fn await_line(&mut self, text: &str) -> String {
        if let Some(line) = self.stderr.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + PROCESS_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stderr.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?}; stderr:\n{}", self.stderr.join("\n")),
            }
        }
    }

    /// The first listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// CPU time (user + system) the process has used so far, from /proc (Linux only).
    pub fn cpu_time(&self) -> Option<Duration> {
        let pid = self.child.as_ref()?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf only reads a system constant.
        let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
            .ok()?
            .max(1);
        Some(Duration::from_micros(ticks * 1_000_000 / hz))
    }

    /// Sends `signal` and leaves the process running (SIGHUP: reload).
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("the child is running");
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        // SAFETY: kill(2) on our own child's pid; it has not been waited for, so it exists.
        unsafe { libc::kill(pid, signal) };
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Sends SIGTERM, waits for the exit, and returns its status and all of stderr.
    pub fn terminate(self) -> (ExitStatus, String) {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `signal`, waits for the exit, and returns its status and all of stderr.
    pub fn stop_with(mut self, signal: i32) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("the child is running");
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        // SAFETY: kill(2) on our own child's pid; it has not been waited for, so it exists.
        unsafe { libc::kill(pid, signal) };
        let status = wait_bounded(&mut child, PROCESS_LIMIT);
        loop {
            match self.lines.recv_timeout(PROCESS_LIMIT) {
                Ok(line) => self.stderr.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stderr did not close"),
            }
        }
        (status, self.stderr.join("\n"))
    }
}

impl Drop for Ferrovia {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Parses `... listening on udp:ADDR, ...` or `... listening on tcp:ADDR as ...`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on ").nth(1)?;
    let (_, rest) = rest.split_once(':')?; // udp, tcp, tls, ws or wss
    let end = rest.find([',', ' ']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Waits for `child` at most `limit`, killing it past that (and failing the test).
pub fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a child process ran past {limit:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until a program has bound `addr` (over TCP when `stream`, else UDP): until our own
/// bind of it fails, at most 10 s.
pub fn await_bound(addr: SocketAddr, stream: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let free = || match stream {
        false => std::net::UdpSocket::bind(addr).is_ok(),
        true => std::net::TcpListener::bind(addr).is_ok(),
    };
    while free() {
        assert!(Instant::now() < deadline, "nothing bound {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A sipp run in its own scratch directory, killed on drop.
pub struct Sipp {
    child: Option<Child>,
    pub dir: PathBuf,
    pub name: String,
}

impl Sipp {
    /// Fails the test with an install hint when sipp is not on PATH.
    pub fn require() {
        let found = Command::new("sipp")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(found, "sipp is not on PATH: apt-get install sip-tester");
    }

    /// The shipped scenario file `tests/sipp/{name}`.
    /// The arguments a load run's uac and uas share: loopback, `sip_port` (and free control
    /// and media ports), `calls` calls, the transport mode when given, bounded timeouts, and
    /// socket buffers large enough not to overflow on a busy machine (sipp's default 64 KiB
    /// does).
    pub fn load_args(sip_port: u16, calls: u64, transport: Option<&str>) -> Vec<String> {
        let mut args: Vec<String> = [
            "-i",
            "127.0.0.1",
            "-p",
            &sip_port.to_string(),
            "-cp",
            &super::free_udp_port().to_string(),
            "-mp",
            &super::free_udp_port_pair().to_string(),
            "-m",
            &calls.to_string(),
            "-timeout",
            "90s",
            "-timeout_error",
            "-max_recv_loops",
            "5000",
            "-buff_size",
            "4194304",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(t) = transport {
            args.extend(["-t".to_string(), t.to_string()]);
        }
        args
    }

    /// Starts sipp's built-in uas for a load run (`load_args`) on 127.0.0.1:`port`, and
    /// waits until it has bound the port (TCP for a `t…` transport mode).
    pub fn load_uas(name: &str, port: u16, calls: u64, transport: Option<&str>) -> Sipp {
        let mut args = vec!["-sn".to_string(), "uas".to_string()];
        args.extend(Sipp::load_args(port, calls, transport));
        let uas = Sipp::start(name, &args);
        let stream = transport.is_some_and(|t| t.starts_with('t'));
        await_bound(SocketAddr::from(([127, 0, 0, 1], port)), stream);
        uas
    }

    pub fn scenario(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(name)
    }

    /// Starts sipp with `args` (plus `-nostdin`, statistics to `{name}.csv`) in a scratch
    /// directory named after `name`.
    pub fn start(name: &str, args: &[String]) -> Sipp {
        Sipp::require();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sipp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the sipp scratch directory");
        let stats = format!("{name}.csv");
        let child = Command::new("sipp")
            .args(args)
            .args(["-nostdin", "-trace_stat", "-stf", &stats, "-fd", "1"])
            .args(["-trace_err", "-error_file", &format!("{name}_errors.log")])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("screen.txt")).expect("screen file"))
            .stderr(std::fs::File::create(dir.join("stderr.txt")).expect("stderr file"))
            .spawn()
            .expect("spawn sipp");
        Sipp {
            child: Some(child),
            dir,
            name: name.to_owned(),
        }
    }

    /// Waits for sipp to exit (bounded) and returns its exit code and final statistics.
    pub fn finish(mut self, limit: Duration) -> SippResult {
        let mut child = self.child.take().expect("sipp is running");
        let status = wait_bounded(&mut child, limit);
        let read = |file: &str| std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        SippResult {
            code: status.code(),
            stats: last_stats(&read(&format!("{}.csv", self.name))),
            errors: read(&format!("{}_errors.log", self.name)),
            screen: read("screen.txt") + &read("stderr.txt"),
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a sipp run reported.
#[derive(Debug)]
pub struct SippResult {
    pub code: Option<i32>,
    /// The last statistics row, column name → value.
    pub stats: Vec<(String, String)>,
    pub errors: String,
    pub screen: String,
}

impl SippResult {
    /// A cumulative counter from the statistics file, e.g. `SuccessfulCall(C)`.
    pub fn counter(&self, column: &str) -> u64 {
        self.stats
            .iter()
            .find(|(name, _)| name == column)
            .and_then(|(_, value)| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {column} in sipp's statistics: {self:#?}"))
    }
}

/// The header and last row of a sipp `-trace_stat` file (semicolon-separated).
fn last_stats(csv: &str) -> Vec<(String, String)> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let Some(last) = lines.next_back() else {
        return Vec::new();
    };
    header
        .split(';')
        .zip(last.split(';'))
        .map(|(h, v)| (h.to_owned(), v.to_owned()))
        .collect()
}

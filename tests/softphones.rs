//! Acceptance with real softphones: two baresip phones (Debian `baresip`) register with the
//! worked example's ferrovia as registrar and outbound proxy — Alice over UDP, Bob over TCP —
//! Alice calls `sip:bob@edge.example`, Bob answers automatically and both report the call
//! established; Carol, with a wrong password, is refused. Media flows phone to phone (a file
//! of silence as the microphone), so only SIP goes through ferrovia.
//!
//! Skipped with a message when baresip is missing, unless FERROVIA_REQUIRE_TOOLS is set
//! (as CI sets it), where a missing baresip fails the test.

mod runtime_support;

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runtime_support::process::Ferrovia;

const LIMIT: Duration = Duration::from_secs(30);

fn baresip_present() -> bool {
    let found = Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("FERROVIA_REQUIRE_TOOLS").is_none(),
            "baresip is not on PATH: apt-get install baresip"
        );
        eprintln!("softphones: skipped: baresip is not on PATH (apt-get install baresip)");
    }
    found
}

/// A port free on UDP and TCP, with the next one free on TCP (baresip's TLS listener).
fn free_phone_port() -> u16 {
    for _ in 0..64 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if port < u16::MAX - 1
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port for a phone");
}

/// One baresip phone with its own configuration directory; killed on drop.
struct Phone {
    child: Child,
    log: PathBuf,
}

impl Phone {
    fn start(
        dir: &Path,
        user: &str,
        password: &str,
        proxy: &str,
        transport: &str,
        dial: Option<&str>,
    ) -> Phone {
        let home = dir.join(user);
        std::fs::create_dir_all(&home).unwrap();
        let silence = dir.join("silence.wav");
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{}\nnet_interface 127.0.0.1\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
             module_app account.so\nmodule_app menu.so\naudio_player aufile,/dev/null\n\
             audio_source aufile,{}\naudio_alert aufile,/dev/null\n",
            free_phone_port(),
            silence.display()
        );
        std::fs::write(home.join("config"), config).unwrap();
        let account = format!(
            "<sip:{user}@edge.example;transport={transport}>;auth_pass={password};\
             outbound=\"sip:{proxy};transport={transport}\";regint=600;answermode=auto\n"
        );
        std::fs::write(home.join("accounts"), account).unwrap();
        let log = dir.join(format!("{user}.log"));
        let mut command = Command::new("baresip");
        command.args(["-f", home.to_str().unwrap(), "-t", "40"]);
        if let Some(target) = dial {
            command.args(["-e", &format!("/dial {target}")]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn baresip");
        Phone { child, log }
    }

    /// Waits (bounded) until the phone's output contains `text`.
    fn expect(&self, text: &str) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let out = std::fs::read_to_string(&self.log).unwrap_or_default();
            if out.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} in {}:\n{out}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ten seconds of 8 kHz mono silence as a WAV file: the phones' microphone.
fn write_silence(path: &Path) {
    let samples = 8000 * 10;
    let data = samples * 2;
    let mut wav = Vec::with_capacity(44 + data);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for field in [
        16u32.to_le_bytes(),
        [1, 0, 1, 0],
        8000u32.to_le_bytes(),
        16000u32.to_le_bytes(),
    ] {
        wav.extend_from_slice(&field);
    }
    wav.extend_from_slice(&[2, 0, 16, 0]);
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data as u32).to_le_bytes());
    wav.resize(44 + data, 0);
    std::fs::write(path, wav).unwrap();
}

#[test]
fn two_softphones_register_and_call_each_other_and_a_wrong_password_is_refused() {
    if !baresip_present() {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("softphones-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_silence(&dir.join("silence.wav"));
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/registrar/registrar.toml");
    let port = free_phone_port();
    let (udp, tcp) = (
        format!("udp:127.0.0.1:{port}"),
        format!("tcp:127.0.0.1:{port}"),
    );
    let _proxy = Ferrovia::start(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &udp,
            "--listen",
            &tcp,
        ],
        2,
    );
    let proxy = format!("127.0.0.1:{port}");

    let bob = Phone::start(&dir, "bob", "bob-secret", &proxy, "tcp", None);
    bob.expect("bob@edge.example: {0/TCP/v4} 200 OK (ferrovia)");
    let alice = Phone::start(
        &dir,
        "alice",
        "alice-secret",
        &proxy,
        "udp",
        Some("sip:bob@edge.example"),
    );
    alice.expect("alice@edge.example: {0/UDP/v4} 200 OK (ferrovia)");
    bob.expect("Call established: sip:alice@edge.example");
    alice.expect("Call established: sip:bob@edge.example");

    let carol = Phone::start(&dir, "carol", "not-carols-password", &proxy, "udp", None);
    carol.expect("403 Forbidden");
    drop((alice, bob, carol));
    let _ = std::fs::remove_dir_all(&dir);
}

//! A real browser over secure WebSocket: headless Chromium runs JsSIP (RFC 7118) against the
//! proxy's `wss:` listener, registers (to a registrar stand-in on UDP), sends a MESSAGE, and
//! calls a sipp UAS over UDP with Chromium's fake media devices; the page then reports what it
//! saw in one last MESSAGE, which the test reads.
//!
//! Needs `chromium` (Debian) and a browser bundle of JsSIP named by `FERROVIA_JSSIP`:
//! `npm install jssip esbuild && npx esbuild node_modules/jssip/lib/JsSIP.js --bundle
//! --global-name=JsSIP --outfile=jssip.js` (`.ci/run` does this, from the versions pinned in
//! `tests/browser/package-lock.json`). Skipped (with a message) without them, unless
//! `FERROVIA_REQUIRE_TOOLS` is set (as `.ci/run` sets it): then missing tools fail the test.

mod runtime_support;
mod secure_support;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrovia::settings::{ContactSettings, ListenAddr};
use ferrovia::sip::Transport;
use runtime_support::start_service;
use runtime_support::tcp::Family;
use secure_support::{Pki, secure_settings};

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><script src="jssip.js"></script><script>
const seen = {registered: false, message: 0, invite: []};
const ua = new JsSIP.UA({
  sockets: [new JsSIP.WebSocketInterface('wss://127.0.0.1:WSS_PORT/')],
  uri: 'sip:web@127.0.0.1', registrar_server: 'sip:127.0.0.1:REG_PORT', register: true,
});
function report() {
  ua.sendMessage('sip:report@127.0.0.1:REG_PORT', JSON.stringify(seen));
}
ua.on('registered', () => {
  seen.registered = true;
  const m = ua.sendMessage('sip:standin@127.0.0.1:REG_PORT', 'hello from a browser', {
    eventHandlers: {
      succeeded: (e) => { seen.message = e.response.status_code; call(); },
      failed: (e) => { seen.message = e.response ? e.response.status_code : -1; call(); },
    }});
});
ua.on('registrationFailed', (e) => { seen.registered = 'failed ' + e.cause; report(); });
function call() {
  const s = ua.call('sip:uas@127.0.0.1:UAS_PORT', {
    mediaConstraints: {audio: true, video: false},
    eventHandlers: {
      progress: (e) => seen.invite.push(e.response ? e.response.status_code : 'progress'),
      accepted: (e) => { seen.invite.push(e.response ? e.response.status_code : 'accepted'); },
      confirmed: () => { seen.invite.push('confirmed'); setTimeout(() => { try { s.terminate(); } catch (x) {} }, 200); },
      ended: (e) => { seen.invite.push('ended'); report(); },
      failed: (e) => { seen.invite.push('failed:' + e.cause); report(); },
    }});
}
ua.start();
</script>"#;

/// A registrar and MESSAGE recipient: answers every request 200 with its Via, From, To,
/// Call-ID, CSeq and Contact (with an Expires for REGISTER); returns the report's body.
fn stand_in(socket: &UdpSocket, deadline: Instant) -> Option<String> {
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("SIP/2.0") || text.starts_with("ACK") {
            continue;
        }
        let mut answer = String::from("SIP/2.0 200 OK\r\n");
        for line in text.split("\r\n").take_while(|l| !l.is_empty()).skip(1) {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if ["via", "from", "call-id", "cseq", "contact"].contains(&name.as_str()) {
                answer.push_str(line);
                if name == "contact" && text.starts_with("REGISTER") {
                    answer.push_str(";expires=600");
                }
                answer.push_str("\r\n");
            } else if name == "to" {
                answer.push_str(&format!("{line};tag=standin\r\n"));
            }
        }
        answer.push_str("Content-Length: 0\r\n\r\n");
        socket.send_to(answer.as_bytes(), from).unwrap();
        if text.starts_with("MESSAGE sip:report@") {
            let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
            return Some(body);
        }
    }
    None
}

#[test]
fn a_browser_registers_messages_and_calls_over_wss() {
    let bundle = std::env::var_os("FERROVIA_JSSIP").map(std::path::PathBuf::from);
    let chromium = Command::new("chromium").arg("--version").output().is_ok();
    let (Some(bundle), true) = (bundle.filter(|b| b.exists()), chromium) else {
        assert!(
            std::env::var_os("FERROVIA_REQUIRE_TOOLS").is_none(),
            "browser_wss: chromium and FERROVIA_JSSIP are required (FERROVIA_REQUIRE_TOOLS): \
             chromium found: {chromium}, FERROVIA_JSSIP: {:?}",
            std::env::var_os("FERROVIA_JSSIP")
        );
        return eprintln!(
            "browser_wss: skipped: needs chromium and FERROVIA_JSSIP (see the file's docs)"
        );
    };
    let pki = Pki::new("browser");
    let mut settings = secure_settings(Family::V4, &pki, 2);
    settings.listen = vec![
        ListenAddr::udp("127.0.0.1:0".parse().unwrap()),
        ListenAddr {
            transport: Transport::Wss,
            addr: "127.0.0.1:0".parse().unwrap(),
        },
    ];
    settings.rewrite_contact = Some(ContactSettings::default());
    let server = start_service(&settings);
    let wss = server.local_addrs()[1];
    let registrar = UdpSocket::bind("127.0.0.1:0").unwrap();
    registrar
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let uas_port = runtime_support::free_udp_port();
    let mut uas = Command::new("sipp")
        .args([
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            &uas_port.to_string(),
            "-m",
            "1",
            "-nostdin",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp");

    let page = PAGE
        .replace("WSS_PORT", &wss.port().to_string())
        .replace(
            "REG_PORT",
            &registrar.local_addr().unwrap().port().to_string(),
        )
        .replace("UAS_PORT", &uas_port.to_string());
    std::fs::write(pki.dir.join("page.html"), page).unwrap();
    std::fs::copy(&bundle, pki.dir.join("jssip.js")).unwrap();
    let mut browser = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--ignore-certificate-errors",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--allow-file-access-from-files",
            &format!("--user-data-dir={}", pki.dir.join("profile").display()),
            &format!("file://{}", pki.dir.join("page.html").display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium");
    let report = stand_in(&registrar, Instant::now() + Duration::from_secs(40));
    let _ = browser.kill();
    let _ = browser.wait();
    let _ = uas.kill();
    let _ = uas.wait();
    let report = report.expect("the page reported");
    eprintln!("browser_wss: the page saw {report}");
    assert!(report.contains("\"registered\":true"), "{report}");
    assert!(report.contains("\"message\":200"), "{report}");
    // The call: 180 reached the page, then the 200 OK did — sipp's plain-RTP answer is
    // refused by WebRTC ("Bad Media Description", JsSIP then ACKs and BYEs), or it is accepted.
    let invite = report.split("\"invite\":").nth(1).unwrap_or_default();
    assert!(invite.contains("180"), "{report}");
    assert!(
        invite.contains("confirmed") || invite.contains("Bad Media Description"),
        "{report}"
    );
}

//! The operator's tools for the routing policy: `ferrovia check` validates a config file
//! (settings, policy, scripts) and `ferrovia route` shows what the policy does with one
//! request, through the same core the workers run, without starting the proxy.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use crate::cli::RunArgs;
use crate::policy::{ActionKind, CompileOptions, Engine, PolicyHandle, compile_file};
use crate::proxy::{Input, OUTPUT_BUFFER_SIZE, Outcome, Proxy};
use crate::settings::Settings;
use crate::sip::{Message, Transport};

/// `ferrovia check`: `Ok` with a one-line description, `Err` with file:line and why.
pub fn check(config: &Path) -> Result<String, String> {
    let settings = load(config)?;
    let options = CompileOptions {
        workers: settings.workers.max(1),
    };
    let policy = compile_file(config, &options).map_err(|e| e.to_string())?;
    let script = if policy.has_script() {
        " and its script"
    } else {
        ""
    };
    Ok(format!(
        "{}: ok, {} rules{script}",
        config.display(),
        policy.len()
    ))
}

fn load(config: &Path) -> Result<Settings, String> {
    let args = RunArgs {
        config: Some(config.to_owned()),
        ..RunArgs::default()
    };
    Settings::load(&args).map_err(|e| e.to_string())
}

/// `ferrovia route`: the decision for `message` from `source` over `transport`, as text.
pub fn route(
    config: &Path,
    source: SocketAddr,
    transport: Transport,
    message: &[u8],
) -> Result<String, String> {
    let settings = load(config)?;
    let policy = compile_file(config, &CompileOptions { workers: 1 }).map_err(|e| e.to_string())?;
    let listen = settings
        .listen
        .iter()
        .find(|l| l.transport == transport)
        .or(settings.listen.first())
        .ok_or("no listen address")?;
    let mut addr = listen.addr;
    if addr.port() == 0 {
        addr.set_port(5060);
    }
    let config_core = crate::runtime::proxy_config(&settings, &[addr]);
    let proxy = Proxy::new(config_core).map_err(|e| e.to_string())?;
    let mut engine = Engine::new(PolicyHandle::new(policy, 1), 0);
    let crlf = to_crlf(message);
    let input = Input {
        data: &crlf,
        source,
        local: addr,
        transport,
        connection: None,
        now: Instant::now(),
    };
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let outcome = proxy.handle_routed(input, Some(&mut engine), &mut out);
    let decision = engine.last_decision();
    let mut text = String::new();
    match &decision {
        Some(d) => {
            let rule = d.rule.as_deref().unwrap_or("(none: the default)");
            text.push_str(&format!("rule: {rule}\naction: {}\n", d.action.name()));
            if let Some(e) = &d.script_error {
                text.push_str(&format!("script error: {e}\n"));
            }
        }
        None => text.push_str("rule: (the policy was not consulted)\n"),
    }
    match outcome {
        Outcome::Forward(t) => {
            let first = first_line(&out[..t.len]);
            let uri = first.split(' ').nth(1).unwrap_or_default();
            text.push_str(&format!(
                "forward: {} {}\nrequest-uri: {uri}\n",
                t.transport.uri_param(),
                t.destination
            ));
            if decision
                .as_ref()
                .is_some_and(|d| d.action == ActionKind::Pass)
            {
                text.push_str("(routed as addressed)\n");
            }
        }
        Outcome::Reply { transmit, status } => {
            let reply = first_line(&out[..transmit.len]);
            text.push_str(&format!("reply: {status} ({reply})\n"));
            for line in String::from_utf8_lossy(&out[..transmit.len]).lines() {
                if [
                    "Contact:",
                    "WWW-Authenticate:",
                    "Proxy-Authenticate:",
                    "Retry-After:",
                ]
                .iter()
                .any(|h| line.starts_with(h))
                {
                    text.push_str(&format!("  {line}\n"));
                }
            }
        }
        Outcome::Drop(reason) => text.push_str(&format!("drop: {reason}\n")),
    }
    Ok(text)
}

/// Operators write messages with plain line ends; SIP wants CRLF (RFC 3261 §7).
fn to_crlf(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    let text = text.trim_start_matches(['\r', '\n']);
    let mut out = Vec::with_capacity(text.len() + 64);
    let (head, body) = match text.find("\n\n").or(text.find("\r\n\r\n")) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    for line in head.lines() {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.trim_start_matches(['\r', '\n']).as_bytes());
    if Message::scan(&out, false).is_err() {
        return message.to_vec();
    }
    out
}

fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().next().unwrap_or_default().to_owned()
}

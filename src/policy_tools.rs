//! The operator's tools for the routing policy: `ferrovia check` validates a config file
//! (settings, policy, scripts) and `ferrovia route` shows what the policy does with one
//! request, through the same core the workers run, without starting the proxy.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::policy::{CompileOptions, Engine, PolicyCounters, PolicyHandle, Router, compile_file};
use crate::proxy::{Context, Input, OUTPUT_BUFFER_SIZE, Outcome, Proxy, Tables, WorkerState};
use crate::settings::{Overrides, Settings};
use crate::sip::{Flow, Message, Transport};

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
    let args = Overrides {
        config: Some(config.to_owned()),
        ..Overrides::default()
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
    let handle = PolicyHandle::new(policy, 1);
    let mut state = WorkerState::new(proxy.config());
    state.router = Some(Box::new(Engine::new(Arc::clone(&handle), 0)) as Box<dyn Router>);
    let tables = Tables::default();
    let crlf = to_crlf(message);
    let input = Input {
        data: &crlf,
        flow: Flow::new(transport, source, addr),
        now: Instant::now(),
    };
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let before = handle.counters();
    let outcome = proxy.handle(input, &mut Context::new(&tables, &mut state), &mut out);
    let mut text = decision(&before, &handle.counters());
    match outcome {
        Outcome::Forward(t) => {
            let first = first_line(&out[..t.len]);
            let uri = first.split(' ').nth(1).unwrap_or_default();
            text.push_str(&format!(
                "forward: {} {}\nrequest-uri: {uri}\n",
                t.transport.uri_param(),
                t.destination
            ));
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
        Outcome::Park(_) => text.push_str("park: waits for a host name to resolve\n"),
    }
    Ok(text)
}

/// Which rule and action the one evaluation counted (the difference of the counters).
fn decision(before: &PolicyCounters, after: &PolicyCounters) -> String {
    let (rule, action) = after.decided_since(before);
    let Some(action) = action else {
        return "rule: (the policy was not consulted: the proxy answered first)\n".into();
    };
    let rule = rule.unwrap_or_else(|| "(none: the default)".into());
    let mut text = format!("rule: {rule}\naction: {action}\n");
    if after.script_errors > before.script_errors {
        text.push_str("script error: the fallback answered\n");
    }
    text
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

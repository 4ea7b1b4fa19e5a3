//! Lua scripts (Lua 5.4, vendored): one VM per worker, made on the worker's thread.
//!
//! The VM loads only the `string`, `table`, `math` and `utf8` libraries (no `io`, `os`,
//! `package`, `debug`; `dofile`, `loadfile` and `require` removed). A call gets a read-only
//! `req` object (`req:method()`, `req:uri()`, `req:user()`, `req:host()`, `req:port()`,
//! `req:header(name)`, `req:from_user()`, `req:from_host()`, `req:to_user()`,
//! `req:to_host()`, `req:source()`, `req:source_ip()`, `req:transport()`, `req:in_dialog()`,
//! `req:size()`) and returns a table in the rules' vocabulary:
//! `{ action = "proxy", to = "sip:...", add_headers = { "X-A: 1" } }`,
//! `{ action = "reject", code = 404, reason = "Not Found" }`, and so on. Each call runs under
//! an instruction budget (a count hook) and a memory budget; an error, a limit or a bad
//! return value is a [`ScriptError`] carrying the script's line, and the engine answers with
//! the configured fallback.
//!
//! The request is copied into the VM's own buffer for the call (no allocation once warm);
//! what the script returns is copied into reused buffers, so the verdict borrows from here.
//! Lua itself allocates for the strings a call creates: the script path is not
//! allocation-free (`docs/POLICY.md`).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

use mlua::{
    AnyUserData, Function, HookTriggers, Lua, LuaOptions, LuaString, StdLib, Table, UserData,
    UserDataMethods, Value, VmState,
};

use crate::sip::{HeaderName, Span, Transport};

use super::action::destination_of_uri;
use super::compile::default_reason;
use super::rules::ScriptSettings;
use super::verdict::{Destination, Forward, HeaderKey, Modifiers, Reply, Router, Verdict};
use super::view::{RequestView, header_name, party};

/// Instructions between two runs of the budget hook.
const HOOK_EVERY: u32 = 1000;

/// Why a script call gave no verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    /// The script's line, when Lua reported one.
    pub line: Option<usize>,
    pub message: String,
}

/// Checks a script once, off the hot path: it loads, runs its top level, and defines every
/// function the rules call. `Err((line, message))`.
pub(crate) fn check(settings: &ScriptSettings) -> Result<(), (usize, String)> {
    let vm = LuaVm::new(settings).map_err(|e| (e.line.unwrap_or(0), e.message))?;
    drop(vm);
    Ok(())
}

/// The request as copied for one call.
#[derive(Debug, Default)]
struct Current {
    buf: Vec<u8>,
    method: Span,
    uri: Span,
    user: Option<Span>,
    host: Span,
    port: Option<u16>,
    /// (class, line, value) of every header line.
    headers: Vec<(HeaderName, Span, Span)>,
    source: Option<SocketAddr>,
    transport: Option<Transport>,
    in_dialog: bool,
    size: usize,
}

impl Current {
    fn load(&mut self, view: &RequestView<'_>) {
        let msg = view.message();
        self.buf.clear();
        self.buf.extend_from_slice(msg.buf());
        let span = |part: &[u8]| span_in(msg.buf(), part);
        self.method = span(view.method_name());
        self.uri = span(view.uri());
        self.user = Some(span(view.uri_user())).filter(|s| !s.is_empty());
        self.host = span(view.uri_host());
        self.port = view.uri_port();
        self.headers.clear();
        // Names are found at lookup (rare), not copied per call.
        self.headers
            .extend(msg.headers().iter().map(|h| (h.name, h.line, h.value)));
        self.source = Some(view.source);
        self.transport = Some(view.transport);
        self.in_dialog = view.in_dialog();
        self.size = view.size();
    }

    fn text(&self, span: Span) -> &[u8] {
        span.of(&self.buf)
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        let class = HeaderName::classify(name);
        self.headers
            .iter()
            .find(|(c, line, _)| {
                *c == class
                    && (class != HeaderName::Other
                        || header_name(&self.buf, line.start(), line.end())
                            .eq_ignore_ascii_case(name))
            })
            .map(|(_, _, v)| self.text(*v))
    }

    fn party(&self, which: HeaderName) -> (&[u8], &[u8]) {
        match self.headers.iter().find(|(c, _, _)| *c == which) {
            Some((_, _, v)) => party(&self.buf, *v),
            None => (b"", b""),
        }
    }
}

/// A sub-slice's span in `buf` (empty when it is not inside).
fn span_in(buf: &[u8], part: &[u8]) -> Span {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    if part.is_empty() || start > buf.len() || start + part.len() > buf.len() {
        return Span::default();
    }
    Span::new(start, start + part.len())
}

/// The `req` object scripts read.
struct Req(Rc<RefCell<Current>>);

impl UserData for Req {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        fn bytes(lua: &Lua, b: &[u8]) -> mlua::Result<Value> {
            lua.create_string(b).map(Value::String)
        }
        m.add_method("method", |lua, r, ()| {
            let c = r.0.borrow();
            bytes(lua, c.text(c.method))
        });
        m.add_method("uri", |lua, r, ()| {
            let c = r.0.borrow();
            bytes(lua, c.text(c.uri))
        });
        m.add_method("user", |lua, r, ()| {
            let c = r.0.borrow();
            bytes(lua, c.user.map_or(&b""[..], |u| c.text(u)))
        });
        m.add_method("host", |lua, r, ()| {
            let c = r.0.borrow();
            bytes(lua, c.text(c.host))
        });
        m.add_method("port", |_, r, ()| Ok(r.0.borrow().port));
        m.add_method("header", |lua, r, name: LuaString| {
            let c = r.0.borrow();
            match c.header(&name.as_bytes()) {
                Some(v) => bytes(lua, v),
                None => Ok(Value::Nil),
            }
        });
        m.add_method("from_user", |lua, r, ()| {
            bytes(lua, r.0.borrow().party(HeaderName::From).0)
        });
        m.add_method("from_host", |lua, r, ()| {
            bytes(lua, r.0.borrow().party(HeaderName::From).1)
        });
        m.add_method("to_user", |lua, r, ()| {
            bytes(lua, r.0.borrow().party(HeaderName::To).0)
        });
        m.add_method("to_host", |lua, r, ()| {
            bytes(lua, r.0.borrow().party(HeaderName::To).1)
        });
        m.add_method("source", |_, r, ()| {
            Ok(r.0.borrow().source.map(|s| s.to_string()))
        });
        m.add_method("source_ip", |_, r, ()| {
            Ok(r.0.borrow().source.map(|s| s.ip().to_string()))
        });
        m.add_method("transport", |_, r, ()| {
            Ok(r.0.borrow().transport.map(|t| t.uri_param()))
        });
        m.add_method("in_dialog", |_, r, ()| Ok(r.0.borrow().in_dialog));
        m.add_method("size", |_, r, ()| Ok(r.0.borrow().size));
    }
}

/// What a script returned, copied into buffers reused call after call.
#[derive(Debug, Default)]
struct Returned {
    reason: String,
    headers: Vec<u8>,
    to: String,
    request_uri: String,
    user: Vec<u8>,
    host: Vec<u8>,
    prefix: Vec<u8>,
    add_headers: Vec<u8>,
    remove_headers: Vec<HeaderKey>,
}

/// The keys of a returned table, made once per VM (a key made per call costs a Lua string).
struct Keys {
    action: LuaString,
    code: LuaString,
    reason: LuaString,
    headers: LuaString,
    contacts: LuaString,
    to: LuaString,
    request_uri: LuaString,
    user: LuaString,
    host: LuaString,
    prefix: LuaString,
    strip: LuaString,
    add_headers: LuaString,
    remove_headers: LuaString,
    record_route: LuaString,
    rewrite_contacts: LuaString,
    media: LuaString,
}

impl Keys {
    fn new(lua: &Lua) -> mlua::Result<Keys> {
        let k = |s: &str| lua.create_string(s);
        Ok(Keys {
            action: k("action")?,
            code: k("code")?,
            reason: k("reason")?,
            headers: k("headers")?,
            contacts: k("contacts")?,
            to: k("to")?,
            request_uri: k("request_uri")?,
            user: k("user")?,
            host: k("host")?,
            prefix: k("prefix")?,
            strip: k("strip")?,
            add_headers: k("add_headers")?,
            remove_headers: k("remove_headers")?,
            record_route: k("record_route")?,
            rewrite_contacts: k("rewrite_contacts")?,
            media: k("media")?,
        })
    }
}

/// One worker's Lua VM with the policy's script loaded.
pub struct LuaVm {
    lua: Lua,
    functions: Vec<Function>,
    req: AnyUserData,
    current: Rc<RefCell<Current>>,
    budget: Rc<Cell<u32>>,
    instructions: u32,
    memory: usize,
    keys: Keys,
    returned: Returned,
}

impl std::fmt::Debug for LuaVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaVm")
            .field("functions", &self.functions.len())
            .finish()
    }
}

fn script_error(e: &mlua::Error) -> ScriptError {
    let message = match e {
        mlua::Error::CallbackError { cause, .. } => cause.to_string(),
        other => other.to_string(),
    };
    let message = message.lines().next().unwrap_or_default().to_owned();
    ScriptError {
        line: line_in(&message),
        message,
    }
}

/// The line in a Lua message `file.lua:12: ...`.
fn line_in(message: &str) -> Option<usize> {
    message
        .split(':')
        .skip(1)
        .find_map(|part| part.trim().parse::<usize>().ok())
}

impl LuaVm {
    /// A VM with the script loaded and its top level run, every rule function resolved.
    pub(crate) fn new(settings: &ScriptSettings) -> Result<LuaVm, ScriptError> {
        let name = settings
            .path
            .file_name()
            .map_or("script.lua".into(), |n| n.to_string_lossy().into_owned());
        Self::from_source(
            &settings.source,
            &name,
            &settings.functions,
            settings.instructions,
            settings.memory,
        )
    }

    /// A VM running `source` (named `name` in messages) that exposes `functions`.
    pub fn from_source(
        source: &str,
        name: &str,
        functions: &[Box<str>],
        instructions: u32,
        memory: usize,
    ) -> Result<LuaVm, ScriptError> {
        let err = |e: mlua::Error| script_error(&e);
        let libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8;
        let lua = Lua::new_with(libs, LuaOptions::new()).map_err(err)?;
        let globals = lua.globals();
        for unsafe_global in ["dofile", "loadfile", "require", "collectgarbage"] {
            globals.set(unsafe_global, Value::Nil).map_err(err)?;
        }
        let budget = Rc::new(Cell::new(u32::MAX));
        let hook_budget = Rc::clone(&budget);
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                let left = hook_budget.get();
                if left == 0 {
                    return Err(mlua::Error::runtime("instruction limit reached"));
                }
                hook_budget.set(left - 1);
                Ok(VmState::Continue)
            },
        )
        .map_err(err)?;
        // The top level runs under the same limits as a call.
        budget.set(instructions / HOOK_EVERY);
        let base = lua.used_memory();
        lua.set_memory_limit(base + memory.max(1 << 20) * 4)
            .map_err(err)?;
        lua.load(source)
            .set_name(format!("@{name}"))
            .exec()
            .map_err(err)?;
        let mut resolved = Vec::with_capacity(functions.len());
        for f in functions {
            let func: Option<Function> = globals.get(&**f).map_err(err)?;
            resolved.push(func.ok_or(ScriptError {
                line: None,
                message: format!("{name} defines no function {f:?}"),
            })?);
        }
        let current = Rc::new(RefCell::new(Current::default()));
        let req = lua.create_userdata(Req(Rc::clone(&current))).map_err(err)?;
        let keys = Keys::new(&lua).map_err(err)?;
        Ok(LuaVm {
            keys,
            lua,
            functions: resolved,
            req,
            current,
            budget,
            instructions,
            memory,
            returned: Returned::default(),
        })
    }

    /// Calls function `index` for `view`.
    pub fn call(
        &mut self,
        index: usize,
        view: &RequestView<'_>,
    ) -> Result<Verdict<'_>, ScriptError> {
        let func = self.functions.get(index).ok_or(ScriptError {
            line: None,
            message: format!("no script function #{index}"),
        })?;
        self.current.borrow_mut().load(view);
        self.budget.set(self.instructions / HOOK_EVERY);
        let err = |e: mlua::Error| script_error(&e);
        self.lua
            .set_memory_limit(self.lua.used_memory() + self.memory)
            .map_err(err)?;
        let value: Value = func.call(&self.req).map_err(err)?;
        let Value::Table(table) = value else {
            return Err(ScriptError {
                line: None,
                message: "the script returned no table".into(),
            });
        };
        read_verdict(&table, &self.keys, &mut self.returned).map_err(|message| ScriptError {
            line: None,
            message,
        })
    }
}

/// Reads `{ action = ..., ... }` into `out` and borrows the verdict from it.
fn read_verdict<'r>(t: &Table, k: &Keys, out: &'r mut Returned) -> Result<Verdict<'r>, String> {
    let e = |e: mlua::Error| e.to_string();
    let action: Option<LuaString> = t.raw_get(&k.action).map_err(e)?;
    let action = action.ok_or("the table has no action")?;
    let action = action.as_bytes();
    let code: Option<u16> = t.raw_get(&k.code).map_err(e)?;
    let reply = |code: u16, out: &'r mut Returned| -> Result<Verdict<'r>, String> {
        copy_text(t, &k.reason, &mut out.reason)?;
        lines(t, &k.headers, &mut out.headers, |line, buf| {
            super::compile::push_header_line(line, buf)
        })?;
        let reason = if out.reason.is_empty() {
            default_reason(code)
        } else {
            out.reason.as_str()
        };
        Ok(Verdict::Reply(Reply {
            code,
            reason,
            headers: &out.headers,
        }))
    };
    match &*action {
        b"accept" => reply(200, out),
        b"reject" => match code.unwrap_or(403) {
            c @ 300..=699 => reply(c, out),
            c => Err(format!("reject code {c}: expected 300-699")),
        },
        b"redirect" => {
            let code = code.unwrap_or(302);
            if !(300..=399).contains(&code) {
                return Err(format!("redirect code {code}: expected 3xx"));
            }
            copy_text(t, &k.reason, &mut out.reason)?;
            out.headers.clear();
            lines(t, &k.contacts, &mut out.add_headers, |uri, buf| {
                if destination_of_uri(uri).is_none() || uri.contains(['<', '>', '\r', '\n']) {
                    return Err(format!("contact {uri:?}: expected a sip: URI"));
                }
                buf.extend_from_slice(b"Contact: <");
                buf.extend_from_slice(uri.as_bytes());
                buf.extend_from_slice(b">\r\n");
                Ok(())
            })?;
            std::mem::swap(&mut out.headers, &mut out.add_headers);
            lines(t, &k.headers, &mut out.add_headers, |line, buf| {
                super::compile::push_header_line(line, buf)
            })?;
            out.headers.extend_from_slice(&out.add_headers);
            let reason = if out.reason.is_empty() {
                default_reason(code)
            } else {
                out.reason.as_str()
            };
            Ok(Verdict::Reply(Reply {
                code,
                reason,
                headers: &out.headers,
            }))
        }
        b"drop" => Ok(Verdict::Drop),
        b"pass" => Ok(Verdict::Pass),
        b"proxy" => read_forward(t, k, out),
        other => Err(format!(
            "unknown action {:?}",
            String::from_utf8_lossy(other)
        )),
    }
}

fn read_forward<'r>(t: &Table, k: &Keys, out: &'r mut Returned) -> Result<Verdict<'r>, String> {
    let e = |e: mlua::Error| e.to_string();
    copy_text(t, &k.to, &mut out.to)?;
    copy_text(t, &k.request_uri, &mut out.request_uri)?;
    for (key, buf) in [
        (&k.user, &mut out.user),
        (&k.host, &mut out.host),
        (&k.prefix, &mut out.prefix),
    ] {
        let value: Option<LuaString> = t.raw_get(key).map_err(e)?;
        buf.clear();
        if let Some(v) = value {
            let v = v.as_bytes();
            if v.iter()
                .any(|&b| b <= b' ' || b == b'<' || b == b'>' || b == 0x7f)
            {
                return Err(
                    "user, host and prefix take no spaces, controls or angle brackets".into(),
                );
            }
            buf.extend_from_slice(&v);
        }
    }
    lines(t, &k.add_headers, &mut out.add_headers, |line, buf| {
        super::compile::push_header_line(line, buf)
    })?;
    out.remove_headers.clear();
    let remove: Option<Table> = t.raw_get(&k.remove_headers).map_err(e)?;
    if let Some(list) = remove {
        for name in list.sequence_values::<LuaString>() {
            out.remove_headers
                .push(HeaderKey::new(&name.map_err(e)?.to_str().map_err(e)?));
        }
    }
    let strip: Option<u8> = t.raw_get(&k.strip).map_err(e)?;
    let record_route: Option<bool> = t.raw_get(&k.record_route).map_err(e)?;
    let rewrite_contacts: Option<bool> = t.raw_get(&k.rewrite_contacts).map_err(e)?;
    let media: Option<bool> = t.raw_get(&k.media).map_err(e)?;
    let to_text = if !out.to.is_empty() {
        Some(out.to.as_str())
    } else if !out.request_uri.is_empty() {
        Some(out.request_uri.as_str())
    } else {
        None
    };
    let to = match to_text {
        Some(text) => {
            let (host, port, transport) =
                destination_of_uri(text).ok_or(format!("{text:?}: expected sip:HOST[:PORT]"))?;
            Some(Destination::Host {
                host,
                port,
                transport,
            })
        }
        None => None,
    };
    let some = |b: &'r [u8]| (!b.is_empty()).then_some(b);
    Ok(Verdict::Forward(Forward {
        to,
        modifiers: Modifiers {
            request_uri: some(out.request_uri.as_bytes()),
            strip: strip.unwrap_or(0),
            prefix: &out.prefix,
            user: some(&out.user),
            host: some(&out.host),
            add_headers: &out.add_headers,
            remove_headers: &out.remove_headers,
            record_route,
            rewrite_contacts,
            media,
        },
    }))
}

fn copy_text(t: &Table, key: &LuaString, out: &mut String) -> Result<(), String> {
    out.clear();
    let value: Option<LuaString> = t.raw_get(key).map_err(|e| e.to_string())?;
    if let Some(v) = value {
        out.push_str(&v.to_str().map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// Appends each string of the list at `key` through `push` (cleared first).
fn lines(
    t: &Table,
    key: &LuaString,
    out: &mut Vec<u8>,
    push: impl Fn(&str, &mut Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    out.clear();
    let list: Option<Table> = t.raw_get(key).map_err(|e| e.to_string())?;
    if let Some(list) = list {
        for item in list.sequence_values::<LuaString>() {
            let item = item.map_err(|e| e.to_string())?;
            push(&item.to_str().map_err(|e| e.to_string())?, out)?;
        }
    }
    Ok(())
}

/// A Lua function as a whole [`Router`]: for embedders who route by script alone.
pub struct LuaRouter {
    vm: LuaVm,
    fallback: Reply<'static>,
    /// The last call's error, if it failed.
    pub last_error: Option<ScriptError>,
}

impl LuaRouter {
    /// Loads `source` and routes every request through its function `entry`; a failed call
    /// answers 500.
    pub fn new(source: &str, entry: &str) -> Result<LuaRouter, ScriptError> {
        let vm = LuaVm::from_source(
            source,
            "router.lua",
            &[entry.into()],
            super::compile::DEFAULT_SCRIPT_INSTRUCTIONS,
            super::compile::DEFAULT_SCRIPT_MEMORY,
        )?;
        Ok(LuaRouter {
            vm,
            fallback: Reply {
                code: 500,
                reason: "Script Error",
                headers: b"",
            },
            last_error: None,
        })
    }
}

impl Router for LuaRouter {
    fn route<'r>(&'r mut self, request: &RequestView<'_>) -> Verdict<'r> {
        match self.vm.call(0, request) {
            Ok(v) => {
                self.last_error = None;
                v
            }
            Err(e) => {
                self.last_error = Some(e);
                Verdict::Reply(self.fallback)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Message;

    const INVITE: &[u8] = b"INVITE sip:+15551234@edge.example:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:alice@a.example>;tag=1\r\n\
To: <sip:bob@edge.example>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nX-Script: yes\r\n\
Content-Length: 0\r\n\r\n";

    fn vm(source: &str) -> LuaVm {
        LuaVm::from_source(source, "t.lua", &["f".into()], 10_000, 256 << 10).unwrap()
    }

    fn call(vm: &mut LuaVm) -> Result<String, ScriptError> {
        let msg = Message::scan(INVITE, false).unwrap();
        let view = RequestView::new(
            &msg,
            "10.0.0.1:5060".parse().unwrap(),
            "127.0.0.1:5060".parse().unwrap(),
            Transport::Udp,
        );
        vm.call(0, &view).map(|v| format!("{v:?}"))
    }

    #[test]
    fn the_request_is_readable() {
        let mut vm = vm(r#"function f(req)
            local parts = { req:method(), req:user(), req:host(), tostring(req:port()),
              req:header("x-script"), tostring(req:header("X-None")), req:from_user(),
              req:from_host(), req:to_user(), req:source_ip(), req:transport(),
              tostring(req:in_dialog()), req:uri() }
            return { action = "reject", code = 404, reason = table.concat(parts, "|") }
          end"#);
        let got = call(&mut vm).unwrap();
        assert!(
            got.contains("INVITE|+15551234|edge.example|5070|yes|nil|alice|a.example|bob|10.0.0.1|udp|false|sip:+15551234@edge.example:5070"),
            "{got}"
        );
    }

    #[test]
    fn every_action_reads_back() {
        let cases = [
            ("{ action = 'accept' }", "code: 200"),
            ("{ action = 'reject', code = 486 }", "Busy Here"),
            (
                "{ action = 'redirect', contacts = { 'sip:x@h' } }",
                "code: 302",
            ),
            ("{ action = 'drop' }", "Drop"),
            ("{ action = 'pass' }", "Pass"),
            (
                "{ action = 'proxy', to = 'sip:10.0.0.9:5070', strip = 2, add_headers = { 'X-A: 1' } }",
                "strip: 2",
            ),
            (
                "{ action = 'proxy', request_uri = 'sip:x@10.0.0.2:5090' }",
                "port: Some(5090)",
            ),
        ];
        for (table, want) in cases {
            let mut vm = vm(&format!("function f(req) return {table} end"));
            let got = call(&mut vm).unwrap();
            assert!(got.contains(want), "{table}: {got}");
        }
    }

    #[test]
    fn errors_and_limits_are_script_errors_with_a_line() {
        let mut broken = vm("function f(req)\n  local x = nil\n  return x.y\nend");
        let e = call(&mut broken).unwrap_err();
        assert_eq!(e.line, Some(3), "{e:?}");
        let mut spinning = vm("function f(req)\n  while true do end\nend");
        let e = call(&mut spinning).unwrap_err();
        assert!(e.message.contains("instruction limit"), "{e:?}");
        let mut greedy = vm(
            "function f(req)\n  local t = {}\n  for i = 1, 1e7 do t[i] = string.rep('x', 100) .. i end\nend",
        );
        let e = call(&mut greedy).unwrap_err();
        assert!(
            e.message.to_lowercase().contains("memory") || e.message.contains("instruction limit"),
            "{e:?}"
        );
        let mut odd = vm("function f(req) return 42 end");
        assert!(call(&mut odd).unwrap_err().message.contains("no table"));
        let mut unknown = vm("function f(req) return { action = 'teleport' } end");
        assert!(
            call(&mut unknown)
                .unwrap_err()
                .message
                .contains("unknown action")
        );
    }

    #[test]
    fn no_io_os_package_or_file_loading() {
        let mut vm = vm(
            "function f(req)\n  return { action = 'reject', code = 404, reason = \
            type(io) .. type(os) .. type(package) .. type(dofile) .. type(loadfile) .. type(require) .. type(debug) }\nend",
        );
        let got = call(&mut vm).unwrap();
        assert!(got.contains("nilnilnilnilnilnilnil"), "{got}");
    }

    #[test]
    fn a_lua_router_routes_alone() {
        let mut router = LuaRouter::new(
            "function route(req) return { action = 'drop' } end",
            "route",
        )
        .unwrap();
        let msg = Message::scan(INVITE, false).unwrap();
        let view = RequestView::new(
            &msg,
            "10.0.0.1:5060".parse().unwrap(),
            "127.0.0.1:5060".parse().unwrap(),
            Transport::Udp,
        );
        assert_eq!(router.route(&view), Verdict::Drop);
        let mut broken = LuaRouter::new("function route(req) error('boom') end", "route").unwrap();
        assert!(matches!(
            broken.route(&view),
            Verdict::Reply(Reply { code: 500, .. })
        ));
        assert!(broken.last_error.as_ref().unwrap().message.contains("boom"));
    }
}

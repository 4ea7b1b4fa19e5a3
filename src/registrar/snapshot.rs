//! Bindings written to a file and read back, so registrations survive a restart, and the
//! same records as JSON for `GET /location`.
//!
//! A record holds what a binding needs to be reached again; instants become seconds left
//! (on save) and `now + seconds` (on load). Stream connection ids do not survive a restart:
//! a binding over TCP is reached by opening a connection to its source (or the phone's
//! next REGISTER restores the flow).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sip::Flow;
use crate::sip::Transport;

use super::bindings::Binding;
use super::location::Location;

/// One binding as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRecord {
    pub aor: String,
    pub contact: String,
    pub transport: String,
    pub source: SocketAddr,
    pub local: SocketAddr,
    /// The stream connection id, while the process runs (not restored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<u64>,
    /// Seconds left.
    pub expires: u64,
    /// q in thousandths.
    pub q: u16,
    pub call_id: String,
    pub cseq: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reg_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The SIP address of the node that owns the flow, when it is not this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<SocketAddr>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every live binding of the table as records, sorted by AoR.
pub fn records(location: &Location, now: Instant) -> Vec<BindingRecord> {
    let mut out = Vec::new();
    for (aor, list) in location.entries() {
        out.extend(aor_records(&aor, &list, now, None));
    }
    out
}

/// One AoR's live bindings as records; this node's own carry `me` as their node.
pub fn aor_records(
    aor: &[u8],
    list: &[Binding],
    now: Instant,
    me: Option<SocketAddr>,
) -> Vec<BindingRecord> {
    list.iter()
        .filter(|b| b.expires > now)
        .map(|b| BindingRecord {
            aor: text(aor),
            contact: text(&b.contact),
            transport: b.flow.transport.uri_param().to_owned(),
            source: b.flow.source,
            local: b.flow.local,
            connection: b.flow.conn.map(|c| c.0),
            expires: b.remaining(now),
            q: b.q,
            call_id: text(&b.call_id),
            cseq: b.cseq,
            instance: b.instance.as_deref().map(text),
            reg_id: b.reg_id,
            path: b.path.as_deref().map(text),
            node: b.remote.or(me),
        })
        .collect()
}

/// Writes the table to `path` (through a temporary file, renamed into place).
pub fn save(location: &Location, path: &Path, now: Instant) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(&records(location, now)).map_err(io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

/// Reads `path` into the table; a missing file is an empty table. Returns bindings restored.
pub fn load(location: &Location, path: &Path, now: Instant) -> io::Result<usize> {
    let json = match std::fs::read(path) {
        Ok(json) => json,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let records: Vec<BindingRecord> = serde_json::from_slice(&json).map_err(io::Error::other)?;
    let mut restored = 0;
    for (aor, list) in bindings_of(records, now, None) {
        restored += list.len();
        location.restore(aor.as_bytes(), list, now);
    }
    Ok(restored)
}

/// Records grouped by AoR (in order) as bindings expiring from `now`. A record whose `node`
/// is `me` is this node's own (its flow is local); another node's keeps its address.
pub fn bindings_of(
    records: Vec<BindingRecord>,
    now: Instant,
    me: Option<SocketAddr>,
) -> Vec<(String, Vec<Binding>)> {
    let mut by_aor: Vec<(String, Vec<Binding>)> = Vec::new();
    for r in records {
        let Some(transport) = Transport::from_token(r.transport.as_bytes()) else {
            continue;
        };
        let remote = r.node.filter(|n| Some(*n) != me);
        let binding = Binding {
            contact: r.contact.as_bytes().into(),
            flow: Flow::new(transport, r.source, r.local),
            q: r.q.min(1000),
            expires: now + Duration::from_secs(r.expires),
            registered: now,
            call_id: r.call_id.as_bytes().into(),
            cseq: r.cseq,
            instance: r.instance.map(|i| i.as_bytes().into()),
            reg_id: r.reg_id,
            path: r.path.map(|p| p.as_bytes().into()),
            remote,
        };
        match by_aor.last_mut() {
            Some((aor, list)) if *aor == r.aor => list.push(binding),
            _ => by_aor.push((r.aor, vec![binding])),
        }
    }
    by_aor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::bindings::{ContactSpec, Limits, Request};

    #[test]
    fn a_saved_table_loads_back() {
        let now = Instant::now();
        let loc = Location::new(10);
        let flow = Flow::new(
            Transport::Tcp,
            "192.0.2.1:40000".parse().unwrap(),
            "127.0.0.1:5060".parse().unwrap(),
        );
        let request = Request {
            wildcard: false,
            expires: Some(600),
            call_id: b"c",
            cseq: 3,
            flow,
            path: Some(b"<sip:edge2;lr>"),
            now,
        };
        let contact = ContactSpec {
            uri: b"sip:alice@10.0.0.1;transport=tcp",
            expires: None,
            q: Some(500),
            instance: Some(b"\"<urn:uuid:1>\""),
            reg_id: Some(1),
        };
        loc.register(
            b"alice@edge.example",
            &[contact],
            &request,
            &Limits::default(),
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("ferrovia-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bindings.json");
        save(&loc, &path, now).unwrap();
        let later = now + Duration::from_secs(100);
        let back = Location::new(10);
        assert_eq!(load(&back, &path, later).unwrap(), 1);
        // The seconds left when saved count from the load.
        assert_eq!(records(&back, later), records(&loc, now));
        assert_eq!(load(&back, &dir.join("missing.json"), later).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The shared location store (issue 14, several nodes): Redis as the store of record, on
//! two side threads so no worker ever waits on it.
//!
//! - The **writer** takes each AoR a REGISTER changed here (a bounded queue the registrar
//!   fills without blocking), writes its bindings as JSON under `ferrovia:location:<aor>`
//!   (expiring with the longest binding; deleted when none is left), and publishes
//!   `<node> <aor>` on `ferrovia:location`.
//! - The **subscriber** reads every AoR at (re)connection, then follows the channel: an AoR
//!   another node announced is read back into this node's table. Its bindings on other
//!   nodes keep their owner's SIP address, so a request for them goes to that node, which
//!   delivers it over the flow (RFC 5626's edge model); the owners become trusted peers.
//!
//! The local table is the cache: lookups never touch Redis. When Redis is down both threads
//! count errors and retry every second; the table keeps serving what it has.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{debug, warn};

use crate::registrar::snapshot::{self, BindingRecord};
use crate::registrar::{Changed, Registrar, StoreResult};

/// Keys and the channel.
const PREFIX: &str = "ferrovia:location:";
const CHANNEL: &str = "ferrovia:location";
/// How long a connection attempt or a command may take.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How long to wait after a failure before trying again.
const RETRY: Duration = Duration::from_secs(1);
/// How often the threads look at the stop flag.
const TICK: Duration = Duration::from_millis(200);

/// The two side threads.
pub(super) struct Store {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Store {
    pub(super) fn start(
        url: &str,
        node: SocketAddr,
        registrar: Arc<Registrar>,
        changes: Receiver<Changed>,
    ) -> Result<Store, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("registrar.redis {url:?}: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = Side {
            client: client.clone(),
            node,
            registrar: Arc::clone(&registrar),
            stop: Arc::clone(&stop),
        };
        let reader = Side {
            client,
            node,
            registrar,
            stop: Arc::clone(&stop),
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| format!("cannot start {name}: {e}"))
        };
        let threads = vec![
            spawn("ferrovia-store-w", Box::new(move || writer.write(changes)))?,
            spawn("ferrovia-store-s", Box::new(move || reader.subscribe()))?,
        ];
        Ok(Store { stop, threads })
    }

    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

struct Side {
    client: redis::Client,
    node: SocketAddr,
    registrar: Arc<Registrar>,
    stop: Arc<AtomicBool>,
}

impl Side {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn error(&self, what: &str, e: &redis::RedisError) {
        self.registrar.counters().store(StoreResult::Error);
        debug!("location store: {what}: {e}");
    }

    fn connect(&self) -> Option<redis::Connection> {
        match self.client.get_connection_with_timeout(TIMEOUT) {
            Ok(con) => {
                let _ = con.set_read_timeout(Some(TIMEOUT));
                let _ = con.set_write_timeout(Some(TIMEOUT));
                Some(con)
            }
            Err(e) => {
                self.error("connect", &e);
                None
            }
        }
    }

    /// The writer's loop: one SET (or DEL) and one PUBLISH per change.
    fn write(self, changes: Receiver<Changed>) {
        let mut con: Option<redis::Connection> = None;
        let mut retry_at = Instant::now();
        while !self.stopped() {
            let change = match changes.recv_timeout(TICK) {
                Ok(change) => change,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if con.is_none() && Instant::now() >= retry_at {
                con = self.connect();
                retry_at = Instant::now() + RETRY;
            }
            let Some(c) = con.as_mut() else {
                continue; // Redis is down: the change is lost, the table still has it.
            };
            match self.write_one(c, &change) {
                Ok(()) => self.registrar.counters().store(StoreResult::Written),
                Err(e) => {
                    self.error("write", &e);
                    con = None;
                }
            }
        }
    }

    fn write_one(&self, con: &mut redis::Connection, change: &Changed) -> redis::RedisResult<()> {
        let now = Instant::now();
        let aor = String::from_utf8_lossy(&change.aor);
        let key = format!("{PREFIX}{aor}");
        let records = snapshot::aor_records(&change.aor, &change.bindings, now, Some(self.node));
        match records.iter().map(|r| r.expires).max() {
            None => redis::cmd("DEL").arg(&key).query::<()>(con)?,
            Some(seconds) => {
                let json = serde_json::to_string(&records).unwrap_or_default();
                let ttl_ms = (seconds + 1) * 1000;
                redis::cmd("SET")
                    .arg(&key)
                    .arg(json)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query::<()>(con)?
            }
        }
        let message = format!("{} {aor}", self.node);
        redis::cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(message)
            .query::<()>(con)
    }

    /// The subscriber's loop: load everything, then follow the channel; reconnect on error.
    fn subscribe(self) {
        while !self.stopped() {
            if let Err(e) = self.follow() {
                self.error("subscribe", &e);
            }
            let until = Instant::now() + RETRY;
            while !self.stopped() && Instant::now() < until {
                std::thread::sleep(TICK);
            }
        }
    }

    fn follow(&self) -> redis::RedisResult<()> {
        let Some(mut sub) = self.connect() else {
            return Ok(());
        };
        let Some(mut query) = self.connect() else {
            return Ok(());
        };
        let mut pubsub = sub.as_pubsub();
        pubsub.subscribe(CHANNEL)?;
        pubsub.set_read_timeout(Some(TICK))?;
        self.load_all(&mut query)?;
        while !self.stopped() {
            let msg = match pubsub.get_message() {
                Ok(msg) => msg,
                Err(e) if e.is_timeout() => continue,
                Err(e) => return Err(e),
            };
            let payload: String = msg.get_payload()?;
            let Some((node, aor)) = payload.split_once(' ') else {
                continue;
            };
            if node.parse::<SocketAddr>().ok() == Some(self.node) {
                continue; // our own write
            }
            self.apply(&mut query, aor)?;
        }
        Ok(())
    }

    fn load_all(&self, con: &mut redis::Connection) -> redis::RedisResult<()> {
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{PREFIX}*"))
                .arg("COUNT")
                .arg(500)
                .query(con)?;
            for key in keys {
                if let Some(aor) = key.strip_prefix(PREFIX) {
                    self.apply(con, aor)?;
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Reads one AoR back into the table.
    fn apply(&self, con: &mut redis::Connection, aor: &str) -> redis::RedisResult<()> {
        read_into_table(con, &self.registrar, self.node, aor).map(|_| ())
    }
}

/// Reads the AoR `aor` from the store into the registrar's table (replacing what the table
/// had for it); how many bindings it now has.
fn read_into_table(
    con: &mut redis::Connection,
    registrar: &Registrar,
    node: SocketAddr,
    aor: &str,
) -> redis::RedisResult<usize> {
    let json: Option<String> = redis::cmd("GET").arg(format!("{PREFIX}{aor}")).query(con)?;
    let records: Vec<BindingRecord> = match json {
        None => Vec::new(),
        Some(text) => match serde_json::from_str(&text) {
            Ok(records) => records,
            Err(e) => {
                warn!("location store: {aor}: unreadable record: {e}");
                return Ok(0);
            }
        },
    };
    let now = Instant::now();
    for owner in records.iter().filter_map(|r| r.node) {
        if owner != node {
            registrar.add_peer(owner);
        }
    }
    let list: Vec<_> = snapshot::bindings_of(records, now, Some(node))
        .into_iter()
        .flat_map(|(_, list)| list)
        .collect();
    let found = list.len();
    registrar.location().replace(aor.as_bytes(), list, now);
    registrar.counters().store(StoreResult::Applied);
    Ok(found)
}

/// The side service of kind `SideKind::Location`: a request for one of our AoRs that the
/// table misses parks, and this thread reads the AoR from the store into the table (the
/// subscription may not have brought it yet: a node that just started or reconnected, a
/// lost publication). With Redis down it answers "not found" at once, trying to reconnect
/// at most once a second, so parked requests get their 480 without waiting out the timeout.
pub(crate) struct LocationReader {
    client: redis::Client,
    node: SocketAddr,
    registrar: Arc<Registrar>,
    con: Option<redis::Connection>,
    retry_at: Instant,
}

impl LocationReader {
    pub(crate) fn new(
        url: &str,
        node: SocketAddr,
        registrar: Arc<Registrar>,
    ) -> Result<LocationReader, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("registrar.redis {url:?}: {e}"))?;
        Ok(LocationReader {
            client,
            node,
            registrar,
            con: None,
            retry_at: Instant::now(),
        })
    }

    fn error(&mut self, what: &str, e: &redis::RedisError) {
        self.registrar.counters().store(StoreResult::Error);
        debug!("location store reader: {what}: {e}");
        self.con = None;
        self.retry_at = Instant::now() + RETRY;
    }

    fn connection(&mut self) -> Option<&mut redis::Connection> {
        if self.con.is_none() && Instant::now() >= self.retry_at {
            match self.client.get_connection_with_timeout(TIMEOUT) {
                Ok(con) => {
                    let _ = con.set_read_timeout(Some(TIMEOUT));
                    let _ = con.set_write_timeout(Some(TIMEOUT));
                    self.con = Some(con);
                }
                Err(e) => self.error("connect", &e),
            }
        }
        self.con.as_mut()
    }
}

impl crate::runtime::SideService for LocationReader {
    fn answer(&mut self, query: &crate::proxy::Query) -> Option<crate::proxy::Answer> {
        use crate::proxy::{Answer, Query};
        let Query::Location(aor) = query else {
            return Some(Answer::NotFound);
        };
        let aor = String::from_utf8_lossy(aor).into_owned();
        let (registrar, node) = (Arc::clone(&self.registrar), self.node);
        let Some(con) = self.connection() else {
            return Some(Answer::NotFound);
        };
        match read_into_table(con, &registrar, node, &aor) {
            Ok(0) => Some(Answer::NotFound),
            Ok(_) => Some(Answer::Loaded),
            Err(e) => {
                self.error("read", &e);
                Some(Answer::NotFound)
            }
        }
    }
}

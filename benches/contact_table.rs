//! The contact table under contention: lookups from two threads while a third inserts,
//! against the same work done through `Mutex<HashMap>`, `RwLock<HashMap>`, a bare papaya map
//! and scc's `HashIndex`; plus the single-thread cost of sealing and verifying a token.
//!
//! Every contended variant does what a restore does: verify the token's MAC, find the entry
//! by id, read the URI and the flow. The writer either inserts as fast as it can (`busy`:
//! a worst case, and on a 2-core machine three busy threads time-share) or about once every
//! 50 µs (`paced`: a heavy edge's REGISTER and INVITE rate).
//! Reported time = wall time for each reader to do one lookup while the other does too.
//!
//!     cargo bench --bench contact_table

use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ferrovia::contact::{
    ConnId, ContactTable, ContactTableConfig, ContactToken, EntryId, Flow, Lifetime, NodeId,
    TokenFields, TokenKey,
};
use ferrovia::proxy::Transport;

const SECRET: [u8; 16] = *b"bench-secret-key";
/// Entries the readers look up; the writer churns a separate range.
const STABLE: u64 = 10_000;
/// Entries the writer keeps alive at once in its own range.
const CHURN: u64 = 10_000;
const URI: &[u8] = b"sip:alice@192.168.1.10:5060;transport=udp";

fn flow(n: u64) -> Flow {
    Flow {
        transport: Transport::Udp,
        source: SocketAddr::from(([203, 0, 113, 7], (n % 60_000) as u16 + 1024)),
        local: SocketAddr::from(([198, 51, 100, 1], 5060)),
        conn: Some(ConnId(n)),
    }
}

/// What the baseline maps hold: the same data as a table entry.
#[derive(Clone)]
struct Value {
    uri: Box<[u8]>,
    flow: Flow,
}

fn value(n: u64) -> Value {
    Value {
        uri: URI.into(),
        flow: flow(n),
    }
}

/// One contended variant: readers restore by token, the writer's step `n` adds one entry
/// and drops the one added `CHURN` steps ago.
trait Shared: Sync {
    fn restore(&self, token: &[u8]) -> usize;
    fn write(&self, n: u64);
}

/// The id the writer's step `n` drops: the one it added `CHURN` steps ago.
fn retired(n: u64) -> Option<u64> {
    n.checked_sub(CHURN).map(|old| STABLE + old)
}

/// The work every baseline shares: verify the MAC, then read the map.
fn open(key: &TokenKey, token: &[u8]) -> Option<u64> {
    key.open(token).ok().map(|f| f.entry.0)
}

fn read(v: &Value) -> usize {
    v.uri.len() + usize::from(v.flow.source.port())
}

struct MutexMap(TokenKey, Mutex<HashMap<u64, Value>>);
struct RwLockMap(TokenKey, RwLock<HashMap<u64, Value>>);
struct PapayaMap(TokenKey, papaya::HashMap<u64, Value>);
struct SccIndex(TokenKey, scc::HashIndex<u64, Value>);

/// Locks that a panicking holder poisoned are still usable here: the data is plain.
fn unpoison<G>(r: Result<G, std::sync::PoisonError<G>>) -> G {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared for MutexMap {
    fn restore(&self, token: &[u8]) -> usize {
        let Some(id) = open(&self.0, token) else {
            return 0;
        };
        unpoison(self.1.lock()).get(&id).map_or(0, read)
    }
    fn write(&self, n: u64) {
        let mut map = unpoison(self.1.lock());
        map.insert(STABLE + n, value(n));
        if let Some(old) = retired(n) {
            map.remove(&old);
        }
    }
}

impl Shared for RwLockMap {
    fn restore(&self, token: &[u8]) -> usize {
        let Some(id) = open(&self.0, token) else {
            return 0;
        };
        unpoison(self.1.read()).get(&id).map_or(0, read)
    }
    fn write(&self, n: u64) {
        let mut map = unpoison(self.1.write());
        map.insert(STABLE + n, value(n));
        if let Some(old) = retired(n) {
            map.remove(&old);
        }
    }
}

impl Shared for PapayaMap {
    fn restore(&self, token: &[u8]) -> usize {
        let Some(id) = open(&self.0, token) else {
            return 0;
        };
        self.1.pin().get(&id).map_or(0, read)
    }
    fn write(&self, n: u64) {
        let map = self.1.pin();
        map.insert(STABLE + n, value(n));
        if let Some(old) = retired(n) {
            map.remove(&old);
        }
    }
}

impl Shared for SccIndex {
    fn restore(&self, token: &[u8]) -> usize {
        let Some(id) = open(&self.0, token) else {
            return 0;
        };
        self.1.peek_with(&id, |_, v| read(v)).unwrap_or(0)
    }
    fn write(&self, n: u64) {
        let _ = self.1.insert_sync(STABLE + n, value(n));
        if let Some(old) = retired(n) {
            self.1.remove_sync(&old);
        }
    }
}

/// The real table: readers restore registrations; the writer adds dialog contacts with
/// virtual time running 1 ms a step (idle timeout 10 s, so about `CHURN` stay alive) and
/// sweeps every 1,000 steps.
struct Table {
    table: ContactTable,
    t0: Instant,
}

impl Shared for Table {
    fn restore(&self, token: &[u8]) -> usize {
        self.table
            .lookup(token, self.t0, |e| {
                e.original_uri().len() + usize::from(e.flow().source.port())
            })
            .unwrap_or(0)
    }
    fn write(&self, n: u64) {
        let now = self.t0 + Duration::from_millis(n);
        let _ = self
            .table
            .insert(URI, flow(STABLE + n), Lifetime::Dialog, now);
        if n.is_multiple_of(1_000) {
            self.table.sweep(now);
        }
    }
}

fn stable_tokens(key: &TokenKey) -> Vec<ContactToken> {
    (0..STABLE)
        .map(|id| {
            key.seal(TokenFields {
                node: NodeId(0),
                entry: EntryId(id),
            })
        })
        .collect()
}

fn baselines() -> Vec<(&'static str, Box<dyn Shared>, Vec<ContactToken>)> {
    let key = || TokenKey::new(SECRET);
    let tokens = stable_tokens(&key());
    let fill =
        |insert: &mut dyn FnMut(u64, Value)| (0..STABLE).for_each(|id| insert(id, value(id)));
    let mutex = MutexMap(
        key(),
        Mutex::new(HashMap::with_capacity(2 * STABLE as usize)),
    );
    fill(&mut |k, v| {
        let _ = unpoison(mutex.1.lock()).insert(k, v);
    });
    let rwlock = RwLockMap(
        key(),
        RwLock::new(HashMap::with_capacity(2 * STABLE as usize)),
    );
    fill(&mut |k, v| {
        let _ = unpoison(rwlock.1.write()).insert(k, v);
    });
    let papaya = PapayaMap(key(), papaya::HashMap::with_capacity(2 * STABLE as usize));
    fill(&mut |k, v| {
        let _ = papaya.1.pin().insert(k, v);
    });
    let scc = SccIndex(key(), scc::HashIndex::with_capacity(2 * STABLE as usize));
    fill(&mut |k, v| {
        let _ = scc.1.insert_sync(k, v);
    });
    vec![
        ("contact_table", Box::new(contact_table()), contact_tokens()),
        ("papaya_map", Box::new(papaya), tokens.clone()),
        ("scc_hash_index", Box::new(scc), tokens.clone()),
        ("rwlock_hashmap", Box::new(rwlock), tokens.clone()),
        ("mutex_hashmap", Box::new(mutex), tokens),
    ]
}

fn table_config() -> ContactTableConfig {
    let mut config = ContactTableConfig::new(TokenKey::new(SECRET), 0);
    config.capacity = 4 * (STABLE + CHURN) as usize;
    config.idle_timeout = Duration::from_secs(10);
    config
}

/// A table whose first `STABLE` entries (ids 0..STABLE) are hour-long registrations.
fn contact_table() -> Table {
    let t0 = Instant::now();
    let table = ContactTable::new(table_config(), t0);
    for n in 0..STABLE {
        let life = Lifetime::Registration(Duration::from_secs(3600));
        table
            .insert(URI, flow(n), life, t0)
            .expect("capacity is 4 x STABLE");
    }
    Table { table, t0 }
}

/// The same tokens `contact_table` handed out: ids 0..STABLE, node 0 (`first_entry` = 0).
fn contact_tokens() -> Vec<ContactToken> {
    stable_tokens(&TokenKey::new(SECRET))
}

#[derive(Clone, Copy)]
enum Writer {
    Busy,
    Paced,
}

/// Two readers do `iters` lookups each while the writer writes; returns the readers' wall time.
fn contend(
    shared: &dyn Shared,
    tokens: &[ContactToken],
    iters: u64,
    writer: Writer,
    step: &mut u64,
) -> Duration {
    let stop = AtomicBool::new(false);
    let start_step = *step;
    let (elapsed, steps) = std::thread::scope(|s| {
        let w = s.spawn(|| {
            let mut n = start_step;
            while !stop.load(Ordering::Relaxed) {
                shared.write(n);
                n += 1;
                if let Writer::Paced = writer {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            n
        });
        let start = Instant::now();
        let readers: Vec<_> = (0..2u64)
            .map(|r| {
                s.spawn(move || {
                    let mut sum = 0;
                    for i in 0..iters {
                        let t = &tokens[((i * 7919 + r * 4999) % STABLE) as usize];
                        sum += shared.restore(t.as_bytes());
                    }
                    black_box(sum)
                })
            })
            .collect();
        for r in readers {
            assert!(
                r.join().expect("reader panicked") > 0,
                "lookups found nothing"
            );
        }
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        (elapsed, w.join().expect("writer panicked"))
    });
    *step = steps;
    elapsed
}

fn contended(c: &mut Criterion) {
    for writer in [Writer::Busy, Writer::Paced] {
        let name = match writer {
            Writer::Busy => "contended_busy_writer",
            Writer::Paced => "contended_paced_writer",
        };
        let mut group = c.benchmark_group(name);
        group
            .sample_size(30)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1));
        for (label, shared, tokens) in baselines() {
            let mut step = 0;
            group.bench_function(label, |b| {
                b.iter_custom(|iters| contend(shared.as_ref(), &tokens, iters, writer, &mut step))
            });
        }
        group.finish();
    }
}

fn single_thread(c: &mut Criterion) {
    let key = TokenKey::new(SECRET);
    let fields = TokenFields {
        node: NodeId(0),
        entry: EntryId(123_456),
    };
    let token = key.seal(fields);
    let mut forged = token.as_bytes().to_vec();
    forged[20] = if forged[20] == b'a' { b'b' } else { b'a' };
    let mut group = c.benchmark_group("token");
    group.bench_function("seal", |b| b.iter(|| key.seal(black_box(fields))));
    group.bench_function("open_genuine", |b| {
        b.iter(|| key.open(black_box(token.as_bytes())))
    });
    group.bench_function("open_forged", |b| b.iter(|| key.open(black_box(&forged))));
    group.bench_function("open_not_a_token", |b| {
        b.iter(|| key.open(black_box(b"alice")))
    });
    group.finish();

    let Table { table, t0 } = contact_table();
    let tokens = contact_tokens();
    let mut group = c.benchmark_group("table_single_thread");
    let mut i = 0usize;
    group.bench_function("lookup", |b| {
        b.iter(|| {
            i = (i + 7919) % tokens.len();
            table.lookup(tokens[i].as_bytes(), t0, |e| e.original_uri().len())
        })
    });
    group.bench_function("lookup_forged", |b| {
        b.iter(|| table.lookup(black_box(&forged), t0, |_| ()))
    });
    let mut n = 0u64;
    group.bench_function("insert_refresh", |b| {
        b.iter(|| {
            n = (n + 7919) % STABLE;
            table.insert(
                URI,
                flow(n),
                Lifetime::Registration(Duration::from_secs(3600)),
                t0,
            )
        })
    });
    group.bench_function("insert_new", |b| {
        b.iter_custom(|iters| {
            let mut config = table_config();
            config.capacity = iters as usize;
            let fresh = ContactTable::new(config, t0);
            let start = Instant::now();
            for n in 0..iters {
                let _ = black_box(fresh.insert(URI, flow(n), Lifetime::Dialog, t0));
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, single_thread, contended);
criterion_main!(benches);

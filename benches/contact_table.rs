//! The contact table under contention: lookups from two threads while a third inserts,
//! against the same work done through `Mutex<HashMap>`, `RwLock<HashMap>`, a bare papaya map,
//! scc's `HashIndex` (values inline, and behind an `Arc` as the table's atomic deadline would
//! need) and a slot array of `ArcSwapOption`s indexed by entry id; plus single-thread costs.
//!
//! Every contended variant does what a restore does: verify the token's MAC, find the entry
//! by id, read the URI and the flow. Readers stride over 100,000 contacts. The writer adds
//! contacts that live 10,000 steps and sweeps every 1,000 steps (a lock-based map sweeps
//! under its lock), either as fast as it can (`Busy`: a worst case; on a 2-core machine three
//! busy threads time-share) or about once every 50 µs (`Paced`: a heavy edge's rate).
//! Criterion's contended time = wall time for each reader to do one lookup while the other
//! does too.
//!
//! The machine is shared, so `CONTACT_BENCH_ROUNDS=N` adds N interleaved rounds of every
//! variant (load drift hits all alike): single-thread restores in thread CPU time, then the
//! contended runs with per-lookup latency percentiles; medians and per-round ratios to
//! `mutex_hashmap`.
//!
//!     cargo bench --bench contact_table
//!     CONTACT_BENCH_ROUNDS=20 cargo bench --bench contact_table -- rounds-only

use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use ferrovia::contact::{
    ContactTable, ContactTableConfig, ContactToken, EntryId, Flow, Lifetime, NodeId, TokenFields,
    TokenKey,
};
use ferrovia::proxy::Transport;
use hdrhistogram::Histogram;

const SECRET: [u8; 16] = *b"bench-secret-key";
/// Entries the readers look up (a 100,000-contact edge); the writer churns a separate range.
const STABLE: u64 = 100_000;
/// Entries the writer keeps alive at once in its own range.
const CHURN: u64 = 10_000;
const URI: &[u8] = b"sip:alice@192.168.1.10:5060;transport=udp";

fn flow(n: u64) -> Flow {
    Flow {
        transport: Transport::Udp,
        source: SocketAddr::from(([203, 0, 113, 7], (n % 60_000) as u16 + 1024)),
        local: SocketAddr::from(([198, 51, 100, 1], 5060)),
        conn: Some(ferrovia::proxy::ConnectionId(n)),
    }
}

/// What the baseline maps hold: the same data as a table entry.
#[derive(Clone)]
struct Value {
    uri: Box<[u8]>,
    flow: Flow,
    /// The writer step after which a sweep drops it.
    deadline: u64,
}

fn value(n: u64, deadline: u64) -> Value {
    Value {
        uri: URI.into(),
        flow: flow(n),
        deadline,
    }
}

/// The writer sweeps every this many steps, like a timer would.
const SWEEP_EVERY: u64 = 1_000;

/// One contended variant. Readers restore by token. The writer's step `n` adds one entry
/// that lives `CHURN` steps, and every `SWEEP_EVERY` steps sweeps out the dead ones, the
/// way the contact table's own sweep does; a lock-based map sweeps under its lock.
trait Shared: Sync {
    fn restore(&self, token: &[u8]) -> usize;
    fn write(&self, n: u64);
}

/// The work every baseline shares: verify the MAC, then read the map.
fn open(key: &TokenKey, token: &[u8]) -> Option<u64> {
    key.open(token).ok().map(|f| f.entry.0)
}

fn read(v: &Value) -> usize {
    v.uri.len() + usize::from(v.flow.source.port())
}

fn sweeping(n: u64) -> bool {
    n.is_multiple_of(SWEEP_EVERY)
}

struct MutexMap(TokenKey, Mutex<HashMap<u64, Value>>);
struct RwLockMap(TokenKey, RwLock<HashMap<u64, Value>>);
struct PapayaMap(TokenKey, papaya::HashMap<u64, Value>);
struct SccIndex(TokenKey, scc::HashIndex<u64, Value>);
struct SccIndexArc(TokenKey, scc::HashIndex<u64, std::sync::Arc<Value>>);

impl Shared for SccIndexArc {
    fn restore(&self, token: &[u8]) -> usize {
        let Some(id) = open(&self.0, token) else {
            return 0;
        };
        self.1.peek_with(&id, |_, v| read(v)).unwrap_or(0)
    }
    fn write(&self, n: u64) {
        let _ = self
            .1
            .insert_sync(STABLE + n, std::sync::Arc::new(value(n, n + CHURN)));
        if sweeping(n) {
            self.1.retain_sync(|_, v| v.deadline > n);
        }
    }
}

struct SlotArray(TokenKey, Vec<arc_swap::ArcSwapOption<Value>>);

/// Slots the writer cycles through in `SlotArray`, after the stable ones.
const RING: u64 = CHURN + 2 * SWEEP_EVERY;

impl Shared for SlotArray {
    fn restore(&self, token: &[u8]) -> usize {
        let Some(id) = open(&self.0, token) else {
            return 0;
        };
        let Some(slot) = self.1.get(id as usize) else {
            return 0;
        };
        slot.load().as_deref().map_or(0, read)
    }
    fn write(&self, n: u64) {
        let slot = (STABLE + n % RING) as usize;
        self.1[slot].store(Some(std::sync::Arc::new(value(n, n + CHURN))));
        if sweeping(n) {
            for slot in &self.1 {
                if slot.load().as_ref().is_some_and(|v| v.deadline <= n) {
                    slot.store(None);
                }
            }
        }
    }
}

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
        map.insert(STABLE + n, value(n, n + CHURN));
        if sweeping(n) {
            map.retain(|_, v| v.deadline > n);
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
        map.insert(STABLE + n, value(n, n + CHURN));
        if sweeping(n) {
            map.retain(|_, v| v.deadline > n);
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
        map.insert(STABLE + n, value(n, n + CHURN));
        if sweeping(n) {
            map.retain(|_, v| v.deadline > n);
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
        let _ = self.1.insert_sync(STABLE + n, value(n, n + CHURN));
        if sweeping(n) {
            self.1.retain_sync(|_, v| v.deadline > n);
        }
    }
}

/// The real table: readers restore registrations; the writer adds dialog contacts with
/// virtual time running 1 ms a step (idle timeout 10 s: each lives `CHURN` steps) and
/// sweeps every `SWEEP_EVERY` steps.
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
        if sweeping(n) {
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
    let fill = |insert: &mut dyn FnMut(u64, Value)| {
        (0..STABLE).for_each(|id| insert(id, value(id, u64::MAX)))
    };
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
    let scc_arc = SccIndexArc(key(), scc::HashIndex::with_capacity(2 * STABLE as usize));
    fill(&mut |k, v| {
        let _ = scc_arc.1.insert_sync(k, std::sync::Arc::new(v));
    });
    let slots = SlotArray(
        key(),
        (0..STABLE + RING)
            .map(|id| {
                arc_swap::ArcSwapOption::from_pointee((id < STABLE).then(|| value(id, u64::MAX)))
            })
            .collect(),
    );
    vec![
        ("contact_table", Box::new(contact_table()), contact_tokens()),
        ("slot_arcswap", Box::new(slots), tokens.clone()),
        ("papaya_map", Box::new(papaya), tokens.clone()),
        ("scc_hash_index", Box::new(scc), tokens.clone()),
        ("scc_index_arc", Box::new(scc_arc), tokens.clone()),
        ("rwlock_hashmap", Box::new(rwlock), tokens.clone()),
        ("mutex_hashmap", Box::new(mutex), tokens),
    ]
}

fn table_config() -> ContactTableConfig {
    let mut config = ContactTableConfig::new(TokenKey::new(SECRET), 0);
    config.capacity = 2 * (STABLE + CHURN) as usize;
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
            .expect("capacity is 2 x (STABLE + CHURN)");
    }
    Table { table, t0 }
}

/// The same tokens `contact_table` handed out: ids 0..STABLE, node 0 (`first_entry` = 0).
fn contact_tokens() -> Vec<ContactToken> {
    stable_tokens(&TokenKey::new(SECRET))
}

#[derive(Clone, Copy, Debug)]
enum Writer {
    Busy,
    Paced,
}

/// Sets the flag when dropped, so the writer stops even if a reader panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `readers` while a writer thread writes into `shared` from `*step` on.
fn with_writer<T>(
    shared: &dyn Shared,
    writer: Writer,
    step: &mut u64,
    readers: impl FnOnce() -> T,
) -> T {
    let stop = AtomicBool::new(false);
    let first = *step;
    let (out, last) = std::thread::scope(|s| {
        let w = s.spawn(|| {
            let mut n = first;
            while !stop.load(Ordering::Relaxed) {
                shared.write(n);
                n += 1;
                if let Writer::Paced = writer {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            n
        });
        let out = {
            let _stop = StopOnDrop(&stop);
            readers()
        };
        (out, w.join().expect("writer panicked"))
    });
    *step = last;
    out
}

/// Runs `reader(0)` and `reader(1)` on two threads at once.
fn two_readers<T: Send>(reader: impl Fn(u64) -> T + Sync) -> [T; 2] {
    std::thread::scope(|s| {
        let a = s.spawn(|| reader(0));
        let b = s.spawn(|| reader(1));
        [
            a.join().expect("reader panicked"),
            b.join().expect("reader panicked"),
        ]
    })
}

/// The token reader `r` looks up at its `i`th lookup: a stride through all of them.
fn pick(tokens: &[ContactToken], r: u64, i: u64) -> &[u8] {
    tokens[((i * 7919 + r * 4999) % STABLE) as usize].as_bytes()
}

/// Two readers do `iters` lookups each while the writer writes; returns the readers' wall time.
fn contend(
    shared: &dyn Shared,
    tokens: &[ContactToken],
    iters: u64,
    writer: Writer,
    step: &mut u64,
) -> Duration {
    with_writer(shared, writer, step, || {
        let start = Instant::now();
        let sums = two_readers(|r| (0..iters).map(|i| shared.restore(pick(tokens, r, i))).sum());
        let elapsed = start.elapsed();
        assert!(sums.iter().all(|&s: &usize| s > 0), "lookups found nothing");
        elapsed
    })
}

/// Like `contend`, timing every lookup too (two clock reads each, the same for all variants).
fn contend_timed(
    shared: &dyn Shared,
    tokens: &[ContactToken],
    lookups: u64,
    writer: Writer,
    step: &mut u64,
) -> (Duration, Histogram<u64>) {
    with_writer(shared, writer, step, || {
        let start = Instant::now();
        let [mut a, b] = two_readers(|r| {
            let mut latency = histogram();
            let mut sum = 0;
            for i in 0..lookups {
                let t = Instant::now();
                sum += shared.restore(pick(tokens, r, i));
                latency.saturating_record(t.elapsed().as_nanos() as u64);
            }
            assert!(sum > 0, "lookups found nothing");
            latency
        });
        let elapsed = start.elapsed();
        a.add(&b).expect("same bounds");
        (elapsed, a)
    })
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds")
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

    let mut group = c.benchmark_group("restore_single_thread");
    for (label, shared, tokens) in baselines() {
        let mut i = 0u64;
        group.bench_function(label, |b| {
            b.iter(|| {
                i += 1;
                shared.restore(pick(&tokens, 0, i))
            })
        });
    }
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
    // A sweep that finds nothing to remove is a walk of the whole table: with a lock-based
    // table every worker's lookups would wait this long, once per sweep.
    group.bench_function("sweep_100k_nothing_expired", |b| b.iter(|| table.sweep(t0)));
    let locked = Mutex::new(
        (0..STABLE)
            .map(|id| (id, value(id, u64::MAX)))
            .collect::<HashMap<_, _>>(),
    );
    group.bench_function("mutex_hashmap_retain_100k", |b| {
        b.iter(|| unpoison(locked.lock()).retain(|_, v| v.deadline > 0))
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

/// Rounds of every variant in turn, so that the machine's load (shared with other work)
/// drifts over all of them alike; prints the median over rounds of each variant's mean
/// time per lookup, the median of its per-round ratio to `mutex_hashmap`, and latency
/// percentiles over all rounds.
fn interleaved(rounds: usize) {
    const LOOKUPS: u64 = 100_000;
    for writer in [Writer::Busy, Writer::Paced] {
        let variants = baselines();
        let base = variants.len() - 1; // mutex_hashmap
        let mut means = vec![Vec::new(); variants.len()];
        let mut latency: Vec<_> = variants.iter().map(|_| histogram()).collect();
        let mut steps = vec![0; variants.len()];
        for _ in 0..rounds {
            for (i, (_, shared, tokens)) in variants.iter().enumerate() {
                let (elapsed, h) =
                    contend_timed(shared.as_ref(), tokens, LOOKUPS, writer, &mut steps[i]);
                means[i].push(elapsed.as_nanos() as f64 / LOOKUPS as f64);
                latency[i].add(&h).expect("same bounds");
            }
        }
        println!("\n{writer:?} writer, {rounds} rounds x 2 readers x {LOOKUPS} lookups:");
        println!(
            "{:<16} {:>9} {:>10} {:>8} {:>8} {:>9} {:>9}",
            "variant", "ns/lookup", "vs mutex", "p50 ns", "p99 ns", "p99.9 ns", "max us"
        );
        for (i, (label, _, _)) in variants.iter().enumerate() {
            let ratios: Vec<f64> = means[i]
                .iter()
                .zip(&means[base])
                .map(|(m, b)| m / b)
                .collect();
            let h = &latency[i];
            println!(
                "{label:<16} {:>9.0} {:>10.2} {:>8} {:>8} {:>9} {:>9.0}",
                median(&means[i]),
                median(&ratios),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max() as f64 / 1000.0
            );
        }
    }
}

/// This thread's CPU time: unlike wall time, it does not grow while other work on the
/// machine has the core.
#[allow(unsafe_code)]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux defines.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Single-thread restores, every variant in turn each round, timed in thread CPU time;
/// prints the median ns per restore and the median per-round ratio to `mutex_hashmap`.
fn single_rounds(rounds: usize) {
    const RESTORES: u64 = 200_000;
    let variants = baselines();
    let base = variants.len() - 1;
    let mut means = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, (_, shared, tokens)) in variants.iter().enumerate() {
            let start = thread_cpu_time();
            let sum: usize = (0..RESTORES)
                .map(|n| shared.restore(pick(tokens, 0, n)))
                .sum();
            let cpu = thread_cpu_time() - start;
            assert!(black_box(sum) > 0, "restores found nothing");
            means[i].push(cpu.as_nanos() as f64 / RESTORES as f64);
        }
    }
    println!("\nsingle thread, {rounds} rounds x {RESTORES} restores, thread CPU time:");
    println!("{:<16} {:>9} {:>10}", "variant", "ns/lookup", "vs mutex");
    for (i, (label, _, _)) in variants.iter().enumerate() {
        let ratios: Vec<f64> = means[i]
            .iter()
            .zip(&means[base])
            .map(|(m, b)| m / b)
            .collect();
        println!(
            "{label:<16} {:>9.0} {:>10.2}",
            median(&means[i]),
            median(&ratios)
        );
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

criterion_group!(benches, single_thread, contended);

/// Criterion's benches, then (with `CONTACT_BENCH_ROUNDS=N`) the interleaved rounds.
fn main() {
    benches();
    let rounds = std::env::var("CONTACT_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok());
    if let Some(rounds) = rounds {
        single_rounds(rounds);
        interleaved(rounds);
    }
    Criterion::default().configure_from_args().final_summary();
}

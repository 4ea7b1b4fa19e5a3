//! The contact-rewrite table: shared by every worker, lock-free to read, bounded, expiring.
//!
//! Contract:
//! - [`ContactTable::lookup`] verifies the token's MAC before it touches the map, never
//!   allocates (after the calling thread's first use of the table), takes no lock, and never
//!   panics on any input bytes.
//! - [`ContactTable::insert`] is idempotent for one (URI, flow): a REGISTER refresh or a
//!   retransmission gets the same token back and moves the expiry later, never earlier.
//!   It may allocate, and refuses (counted) when the table is full or the URI too long.
//! - Nothing reads a clock: every `now` comes from the caller.
//! - [`ContactTable::sweep`] removes expired entries; call it off the hot path, from a timer.

use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use siphasher::sip128::{Hasher128, SipHasher13};

use super::counters::{ContactCounters, Count, Counters};
use super::entry::{Clock, ContactEntry, Lifetime, millis};
use super::id_hash::IdHash;
use super::token::{ContactToken, EntryId, NodeId, TokenError, TokenFields, TokenKey};
use crate::sip::Flow;

/// How a table is sized, keyed and timed. Built by the runtime from its configuration.
#[derive(Clone, Debug)]
pub struct ContactTableConfig {
    /// Seals and verifies tokens; shared by the instances that must verify each other's.
    pub key: TokenKey,
    /// This instance's number among those sharing `key`.
    pub node: NodeId,
    /// The first entry id. Make it random at every start, so that a token issued by an
    /// earlier run with the same key cannot name an entry of this run.
    pub first_entry: u64,
    /// Most entries held at once; inserts beyond it are refused and counted.
    pub capacity: usize,
    /// Longest original Contact URI accepted, in bytes.
    pub max_uri_len: usize,
    /// How long a dialog contact lives without use; every restore extends an entry this far.
    pub idle_timeout: Duration,
    /// The longest lifetime a REGISTER's expires may give an entry.
    pub max_expires: Duration,
}

impl ContactTableConfig {
    pub const DEFAULT_CAPACITY: usize = 100_000;
    pub const DEFAULT_MAX_URI_LEN: usize = 512;
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
    pub const DEFAULT_MAX_EXPIRES: Duration = Duration::from_secs(7200);

    /// A configuration with the defaults: 100,000 entries, URIs up to 512 bytes, one hour
    /// idle timeout, two hours at most for a registration, node 0.
    pub fn new(key: TokenKey, first_entry: u64) -> ContactTableConfig {
        ContactTableConfig {
            key,
            node: NodeId(0),
            first_entry,
            capacity: Self::DEFAULT_CAPACITY,
            max_uri_len: Self::DEFAULT_MAX_URI_LEN,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_expires: Self::DEFAULT_MAX_EXPIRES,
        }
    }
}

/// Why an insert was refused. Each is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertRefused {
    /// The table holds `capacity` entries; forward the contact unrewritten or refuse the
    /// request, as the proxy's policy says.
    Full,
    /// The URI is longer than `max_uri_len`.
    UriTooLong,
}

/// Why a lookup found no contact. Each is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// Not shaped like a token: an ordinary user part, route it as such.
    Malformed,
    /// Shaped like a token but the MAC is wrong: refuse it (404) or drop it.
    Forged,
    /// A genuine token issued by another node sharing the key.
    Foreign(NodeId),
    /// A genuine token whose entry is gone (swept, or issued by an earlier run).
    Unknown,
    /// A genuine token whose entry has expired.
    Expired,
}

/// A keyed 128-bit hash of (URI, flow): the key of the index that makes inserts idempotent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Fingerprint(u128);

/// The shared contact-rewrite table. Share it as `Arc<ContactTable>`; every method takes
/// `&self`.
pub struct ContactTable {
    key: TokenKey,
    node: NodeId,
    index_key: [u8; 16],
    clock: Clock,
    capacity: usize,
    max_uri_len: usize,
    idle: u64,
    max_expires: u64,
    /// Entry id → entry: the map every lookup reads.
    entries: papaya::HashMap<EntryId, ContactEntry, IdHash>,
    /// (URI, flow) fingerprint → entry id: read and written by inserts and sweeps only.
    index: papaya::HashMap<Fingerprint, EntryId, IdHash>,
    next_entry: AtomicU64,
    /// Live entries plus reservations in flight; never above `capacity`.
    live: AtomicUsize,
    counters: Counters,
}

impl ContactTable {
    /// An empty table whose clock starts at `now`. Allocates the maps for `capacity` entries.
    pub fn new(config: ContactTableConfig, now: Instant) -> ContactTable {
        ContactTable {
            index_key: config.key.derive(b"ferrovia contact index"),
            key: config.key,
            node: config.node,
            clock: Clock::new(now),
            capacity: config.capacity,
            max_uri_len: config.max_uri_len,
            idle: millis(config.idle_timeout),
            max_expires: millis(config.max_expires),
            entries: sized_map(config.capacity),
            index: sized_map(config.capacity),
            next_entry: AtomicU64::new(config.first_entry),
            live: AtomicUsize::new(0),
            counters: Counters::default(),
        }
    }

    /// Records `original_uri` as reached over `flow` and returns its token. The same
    /// (URI, flow) gets the same token while its entry lives, and its expiry moves later.
    pub fn insert(
        &self,
        original_uri: &[u8],
        flow: Flow,
        lifetime: Lifetime,
        now: Instant,
    ) -> Result<ContactToken, InsertRefused> {
        if original_uri.len() > self.max_uri_len {
            self.counters.bump(Count::RefusedTooLong);
            return Err(InsertRefused::UriTooLong);
        }
        let deadline = self.deadline(lifetime, now);
        let fingerprint = self.fingerprint(original_uri, &flow);
        if let Some(id) = self.refresh(fingerprint, original_uri, &flow, deadline) {
            self.counters.bump(Count::Refreshes);
            return Ok(self.token(id));
        }
        self.reserve()?;
        let id = EntryId(self.next_entry.fetch_add(1, Ordering::Relaxed));
        let entry = ContactEntry::new(original_uri, flow, deadline);
        self.entries.pin().insert(id, entry);
        self.index.pin().insert(fingerprint, id);
        self.counters.bump(Count::NewEntries);
        Ok(self.token(id))
    }

    /// Verifies `token` and, if its entry is live at `now`, calls `read` with the entry and
    /// keeps the entry alive at least the idle timeout past `now`.
    /// Never allocates; a forged token is refused before the map is read.
    pub fn lookup<R>(
        &self,
        token: &[u8],
        now: Instant,
        read: impl FnOnce(&ContactEntry) -> R,
    ) -> Result<R, LookupError> {
        let fields = self.open(token)?;
        let entries = self.entries.pin();
        let Some(entry) = entries.get(&fields.entry) else {
            return self.refuse(LookupError::Unknown);
        };
        if !entry.touch(self.clock.ticks(now), self.idle) {
            return self.refuse(LookupError::Expired);
        }
        self.counters.bump(Count::Restores);
        Ok(read(entry))
    }

    /// Verifies a token that a response lists (a registrar's 2xx to REGISTER, a 3xx) and, if
    /// its entry is live at `now`, calls `read` with it. Unlike [`lookup`](Self::lookup) the
    /// entry is not kept alive: being listed is not being used. With `granted`, the expiry the
    /// registrar gave the binding (RFC 3261 §10.3 step 8), the deadline becomes `now +
    /// granted`, capped by `max_expires`, earlier or later than what the REGISTER asked; a
    /// grant of zero leaves it alone, as an unregister's insert does. An expired or swept
    /// entry is never revived. Counts refusals like `lookup`, successes nowhere; never
    /// allocates.
    pub fn confirm<R>(
        &self,
        token: &[u8],
        granted: Option<Duration>,
        now: Instant,
        read: impl FnOnce(&ContactEntry) -> R,
    ) -> Result<R, LookupError> {
        let fields = self.open(token)?;
        let until = granted
            .filter(|g| !g.is_zero())
            .map(|g| self.deadline(Lifetime::Registration(g), now));
        let entries = self.entries.pin();
        let Some(entry) = entries.get(&fields.entry) else {
            return self.refuse(LookupError::Unknown);
        };
        if !entry.settle(self.clock.ticks(now), until) {
            return self.refuse(LookupError::Expired);
        }
        Ok(read(entry))
    }

    /// Removes every entry expired at `now` and returns how many. Safe to run concurrently
    /// with everything, including another sweep; walks the whole table while pinning it, so
    /// call it from a timer, not per message.
    pub fn sweep(&self, now: Instant) -> usize {
        let now = self.clock.ticks(now);
        let entries = self.entries.pin();
        let index = self.index.pin();
        let mut removed = 0;
        for (id, entry) in entries.iter() {
            if !entry.claim_if_expired(now) {
                continue;
            }
            entries.remove(id);
            let fingerprint = self.fingerprint(entry.original_uri(), &entry.flow());
            // Only if it still names this entry: an insert may have replaced it already.
            let _ = index.remove_if(&fingerprint, |_, named| named == id);
            self.live.fetch_sub(1, Ordering::AcqRel);
            removed += 1;
        }
        self.counters.add(Count::Swept, removed as u64);
        removed
    }

    /// Entries in the table now (expired ones count until swept).
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A snapshot of the counters, with the current size.
    pub fn counters(&self) -> ContactCounters {
        self.counters.snapshot(self.len())
    }

    fn open(&self, token: &[u8]) -> Result<TokenFields, LookupError> {
        let fields = match self.key.open(token) {
            Ok(fields) => fields,
            Err(TokenError::Malformed) => return self.refuse(LookupError::Malformed),
            Err(TokenError::Forged) => return self.refuse(LookupError::Forged),
        };
        if fields.node != self.node {
            return self.refuse(LookupError::Foreign(fields.node));
        }
        Ok(fields)
    }

    fn refuse<T>(&self, error: LookupError) -> Result<T, LookupError> {
        self.counters.bump(match error {
            LookupError::Malformed => Count::Malformed,
            LookupError::Forged => Count::Forged,
            LookupError::Foreign(_) => Count::Foreign,
            LookupError::Unknown => Count::Misses,
            LookupError::Expired => Count::Expired,
        });
        Err(error)
    }

    /// The id of the live entry for (URI, flow), with its deadline moved to `deadline`.
    fn refresh(
        &self,
        fingerprint: Fingerprint,
        uri: &[u8],
        flow: &Flow,
        deadline: u64,
    ) -> Option<EntryId> {
        let id = *self.index.pin().get(&fingerprint)?;
        let entries = self.entries.pin();
        let entry = entries.get(&id)?;
        (entry.is_for(uri, flow) && entry.extend(deadline)).then_some(id)
    }

    /// Takes one place in the table, or refuses when it is full.
    fn reserve(&self) -> Result<(), InsertRefused> {
        if self.live.fetch_add(1, Ordering::AcqRel) < self.capacity {
            return Ok(());
        }
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.counters.bump(Count::RefusedFull);
        Err(InsertRefused::Full)
    }

    fn deadline(&self, lifetime: Lifetime, now: Instant) -> u64 {
        let life = match lifetime {
            Lifetime::Registration(expires) => millis(expires).min(self.max_expires),
            Lifetime::Dialog => self.idle,
        };
        self.clock.ticks(now).saturating_add(life)
    }

    fn fingerprint(&self, uri: &[u8], flow: &Flow) -> Fingerprint {
        let mut hasher = SipHasher13::new_with_key(&self.index_key);
        uri.hash(&mut hasher);
        flow.hash(&mut hasher);
        Fingerprint(hasher.finish128().as_u128())
    }

    fn token(&self, entry: EntryId) -> ContactToken {
        self.key.seal(TokenFields {
            node: self.node,
            entry,
        })
    }
}

/// A map allocated up front for `capacity` entries, so inserts do not resize it.
fn sized_map<K, V>(capacity: usize) -> papaya::HashMap<K, V, IdHash> {
    papaya::HashMap::builder()
        .capacity(capacity)
        .hasher(IdHash)
        .build()
}

impl fmt::Debug for ContactTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactTable")
            .field("node", &self.node)
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;

    const SECRET: [u8; 16] = *b"ferrovia-test-k!";
    const URI: &[u8] = b"sip:alice@192.168.1.10:5060;transport=udp";

    fn config() -> ContactTableConfig {
        ContactTableConfig::new(TokenKey::new(SECRET), 1_000)
    }

    fn flow(port: u16) -> Flow {
        Flow::new(
            Transport::Udp,
            format!("203.0.113.7:{port}").parse().unwrap(), // a literal address
            "198.51.100.1:5060".parse().unwrap(),
        )
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn restore(
        table: &ContactTable,
        token: &ContactToken,
        now: Instant,
    ) -> Result<(Vec<u8>, Flow), LookupError> {
        table.lookup(token.as_bytes(), now, |e| {
            (e.original_uri().to_vec(), e.flow())
        })
    }

    #[test]
    fn insert_then_restore() {
        let t0 = Instant::now();
        let table = ContactTable::new(config(), t0);
        let token = table
            .insert(URI, flow(40000), Lifetime::Registration(secs(60)), t0)
            .unwrap();
        assert_eq!(
            restore(&table, &token, t0 + secs(1)),
            Ok((URI.to_vec(), flow(40000)))
        );
        assert_eq!(table.len(), 1);
        let c = table.counters();
        assert_eq!(
            (c.rewrites, c.new_entries, c.restores, c.size),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn insert_is_idempotent_per_uri_and_flow() {
        let t0 = Instant::now();
        let table = ContactTable::new(config(), t0);
        let reg = Lifetime::Registration(secs(60));
        let a = table.insert(URI, flow(40000), reg, t0).unwrap();
        let again = table.insert(URI, flow(40000), reg, t0 + secs(30)).unwrap();
        let dialog = table
            .insert(URI, flow(40000), Lifetime::Dialog, t0 + secs(31))
            .unwrap();
        assert_eq!(a, again);
        assert_eq!(a, dialog);
        let other_port = table.insert(URI, flow(40001), reg, t0).unwrap();
        let other_uri = table
            .insert(b"sip:bob@192.168.1.11", flow(40000), reg, t0)
            .unwrap();
        assert_ne!(a, other_port);
        assert_ne!(a, other_uri);
        assert_eq!(table.len(), 3);
        let c = table.counters();
        assert_eq!((c.rewrites, c.new_entries), (5, 3));
    }

    #[test]
    fn refresh_extends_and_never_shortens() {
        let t0 = Instant::now();
        let table = ContactTable::new(config(), t0);
        let token = table
            .insert(URI, flow(1), Lifetime::Registration(secs(60)), t0)
            .unwrap();
        // A refresh at 50 s for 60 s more keeps it alive past the first deadline.
        table
            .insert(
                URI,
                flow(1),
                Lifetime::Registration(secs(60)),
                t0 + secs(50),
            )
            .unwrap();
        assert!(restore(&table, &token, t0 + secs(100)).is_ok());
        // A shorter refresh (expires 0: unregister) does not pull the deadline in.
        table
            .insert(
                URI,
                flow(1),
                Lifetime::Registration(secs(0)),
                t0 + secs(101),
            )
            .unwrap();
        assert!(restore(&table, &token, t0 + secs(102)).is_ok());
    }

    #[test]
    fn a_grant_sets_the_deadline_either_way() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.max_expires = secs(100);
        let table = ContactTable::new(cfg, t0);
        let token = table
            .insert(URI, flow(1), Lifetime::Registration(secs(60)), t0)
            .unwrap();
        let uri = |e: &ContactEntry| e.original_uri().to_vec();
        // Asked 60 s, granted 10 s: the entry follows the grant, and listing it is no use.
        let read = table.confirm(token.as_bytes(), Some(secs(10)), t0, uri);
        assert_eq!(read, Ok(URI.to_vec()));
        assert!(
            table
                .confirm(token.as_bytes(), None, t0 + secs(9), uri)
                .is_ok()
        );
        assert_eq!(
            table.confirm(token.as_bytes(), None, t0 + secs(10), uri),
            Err(LookupError::Expired)
        );
        assert_eq!(table.sweep(t0 + secs(10)), 1);
        // A longer grant lengthens it, up to max_expires; zero leaves it alone.
        let token = table
            .insert(URI, flow(1), Lifetime::Registration(secs(60)), t0)
            .unwrap();
        assert!(
            table
                .confirm(token.as_bytes(), Some(secs(500)), t0, uri)
                .is_ok()
        );
        assert!(
            table
                .confirm(token.as_bytes(), Some(secs(0)), t0, uri)
                .is_ok()
        );
        assert!(
            table
                .confirm(token.as_bytes(), None, t0 + secs(99), uri)
                .is_ok()
        );
        assert_eq!(table.sweep(t0 + secs(100)), 1);
        let c = table.counters();
        assert_eq!((c.restores, c.expired), (0, 1), "{c:?}");
    }

    #[test]
    fn a_grant_for_a_forged_or_unknown_token_is_refused() {
        let t0 = Instant::now();
        let table = ContactTable::new(config(), t0);
        let token = table.insert(URI, flow(1), Lifetime::Dialog, t0).unwrap();
        let mut forged = token.as_bytes().to_vec();
        forged[20] = if forged[20] == b'a' { b'b' } else { b'a' };
        let grant = Some(secs(10));
        assert_eq!(
            table.confirm(&forged, grant, t0, |_| ()),
            Err(LookupError::Forged)
        );
        assert_eq!(
            table.confirm(b"alice", grant, t0, |_| ()),
            Err(LookupError::Malformed)
        );
        table.sweep(t0 + secs(7200));
        assert_eq!(
            table.confirm(token.as_bytes(), grant, t0, |_| ()),
            Err(LookupError::Unknown)
        );
    }

    #[test]
    fn expiry_then_sweep() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.idle_timeout = secs(10);
        let table = ContactTable::new(cfg, t0);
        let reg = table
            .insert(URI, flow(1), Lifetime::Registration(secs(60)), t0)
            .unwrap();
        let dlg = table.insert(URI, flow(2), Lifetime::Dialog, t0).unwrap();
        assert_eq!(
            restore(&table, &dlg, t0 + secs(10)),
            Err(LookupError::Expired)
        );
        assert_eq!(table.sweep(t0 + secs(10)), 1);
        assert_eq!(
            restore(&table, &dlg, t0 + secs(10)),
            Err(LookupError::Unknown)
        );
        assert!(restore(&table, &reg, t0 + secs(59)).is_ok());
        assert_eq!(
            table.sweep(t0 + secs(60)),
            0,
            "the restore at 59 s kept it 10 s more"
        );
        assert_eq!(restore(&table, &reg, t0 + secs(68)).map(|_| ()), Ok(()));
        assert_eq!(table.sweep(t0 + secs(200)), 1);
        assert!(table.is_empty());
        let c = table.counters();
        assert_eq!((c.expired, c.misses, c.swept, c.size), (1, 1, 2, 0));
    }

    #[test]
    fn dialog_contacts_live_while_used() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.idle_timeout = secs(80);
        let table = ContactTable::new(cfg, t0);
        let token = table.insert(URI, flow(1), Lifetime::Dialog, t0).unwrap();
        for minute in 1..=10 {
            assert!(
                restore(&table, &token, t0 + secs(60 * minute)).is_ok(),
                "minute {minute}"
            );
        }
        assert_eq!(
            restore(&table, &token, t0 + secs(600 + 80)),
            Err(LookupError::Expired)
        );
    }

    #[test]
    fn a_swept_contact_gets_a_new_token() {
        let t0 = Instant::now();
        let table = ContactTable::new(config(), t0);
        let old = table
            .insert(URI, flow(1), Lifetime::Registration(secs(5)), t0)
            .unwrap();
        assert_eq!(table.sweep(t0 + secs(5)), 1);
        let new = table
            .insert(URI, flow(1), Lifetime::Registration(secs(5)), t0 + secs(6))
            .unwrap();
        assert_ne!(old, new, "ids are never reused");
        assert_eq!(
            restore(&table, &old, t0 + secs(7)),
            Err(LookupError::Unknown)
        );
        assert!(restore(&table, &new, t0 + secs(7)).is_ok());
    }

    #[test]
    fn an_expired_unswept_contact_is_revived_by_a_refresh() {
        let t0 = Instant::now();
        let table = ContactTable::new(config(), t0);
        let a = table
            .insert(URI, flow(1), Lifetime::Registration(secs(5)), t0)
            .unwrap();
        assert_eq!(restore(&table, &a, t0 + secs(6)), Err(LookupError::Expired));
        let b = table
            .insert(URI, flow(1), Lifetime::Registration(secs(5)), t0 + secs(7))
            .unwrap();
        assert_eq!(a, b);
        assert!(restore(&table, &a, t0 + secs(8)).is_ok());
        assert_eq!(table.sweep(t0 + secs(8)), 0);
    }

    #[test]
    fn registration_lifetime_is_capped() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.max_expires = secs(100);
        cfg.idle_timeout = secs(1);
        let table = ContactTable::new(cfg, t0);
        let token = table
            .insert(URI, flow(1), Lifetime::Registration(secs(86_400)), t0)
            .unwrap();
        assert_eq!(
            restore(&table, &token, t0 + secs(100)),
            Err(LookupError::Expired)
        );
    }

    #[test]
    fn full_table_refuses_and_counts() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.capacity = 2;
        let table = ContactTable::new(cfg, t0);
        let reg = Lifetime::Registration(secs(10));
        table.insert(URI, flow(1), reg, t0).unwrap();
        let second = table.insert(URI, flow(2), reg, t0).unwrap();
        assert_eq!(
            table.insert(URI, flow(3), reg, t0),
            Err(InsertRefused::Full)
        );
        assert_eq!(
            table.insert(URI, flow(2), reg, t0),
            Ok(second),
            "refreshes still work"
        );
        assert_eq!(table.counters().refused_full, 1);
        assert_eq!(table.len(), 2);
        table.sweep(t0 + secs(10));
        assert!(
            table.insert(URI, flow(3), reg, t0 + secs(10)).is_ok(),
            "room again"
        );
    }

    #[test]
    fn long_uri_refused() {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.max_uri_len = 16;
        let table = ContactTable::new(cfg, t0);
        let long = [b'a'; 17];
        assert_eq!(
            table.insert(&long, flow(1), Lifetime::Dialog, t0),
            Err(InsertRefused::UriTooLong)
        );
        assert!(
            table
                .insert(&long[..16], flow(1), Lifetime::Dialog, t0)
                .is_ok()
        );
        assert_eq!(table.counters().refused_too_long, 1);
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused_and_counted() {
        let t0 = Instant::now();
        let table = ContactTable::new(config(), t0);
        let token = table.insert(URI, flow(1), Lifetime::Dialog, t0).unwrap();
        let mut forged = token.as_bytes().to_vec();
        forged[20] = if forged[20] == b'a' { b'b' } else { b'a' };
        assert_eq!(restore_bytes(&table, &forged, t0), Err(LookupError::Forged));
        assert_eq!(
            restore_bytes(&table, b"alice", t0),
            Err(LookupError::Malformed)
        );
        let stranger = TokenKey::new(*b"some other key!!").seal(TokenFields {
            node: NodeId(0),
            entry: EntryId(1_000),
        });
        assert_eq!(restore(&table, &stranger, t0), Err(LookupError::Forged));
        let sibling = TokenKey::new(SECRET).seal(TokenFields {
            node: NodeId(3),
            entry: EntryId(1_000),
        });
        assert_eq!(
            restore(&table, &sibling, t0),
            Err(LookupError::Foreign(NodeId(3)))
        );
        let c = table.counters();
        assert_eq!((c.forged, c.malformed, c.foreign, c.restores), (2, 1, 1, 0));
    }

    fn restore_bytes(table: &ContactTable, token: &[u8], now: Instant) -> Result<(), LookupError> {
        table.lookup(token, now, |_| ())
    }

    #[test]
    fn the_first_entry_id_comes_from_the_config() {
        let t0 = Instant::now();
        let table = ContactTable::new(config(), t0);
        let token = table.insert(URI, flow(1), Lifetime::Dialog, t0).unwrap();
        let fields = TokenKey::new(SECRET).open(token.as_bytes()).unwrap();
        assert_eq!(
            fields,
            TokenFields {
                node: NodeId(0),
                entry: EntryId(1_000)
            }
        );
    }
}

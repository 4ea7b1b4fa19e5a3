//! The location service: every address-of-record's bindings, shared by all workers.
//!
//! A `papaya` map from the AoR (`user@domain`, the domain as configured) to its bindings.
//! Lookups are lock-free and allocate nothing; a REGISTER replaces the AoR's whole binding
//! list in one compare-and-swap (`compute`), so two workers registering the same AoR never
//! lose each other's update. The map holds at most `capacity` AoRs. Expired bindings are
//! never returned; [`Location::sweep`] frees them off the workers' path.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use papaya::{Compute, Operation};

use super::bindings::{self, Binding, ContactSpec, Limits, Refusal, Request};

/// Why a REGISTER was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// RFC 3261 §10.3: the request itself is refused.
    Refused(Refusal),
    /// The table already holds `capacity` AoRs: 503.
    Full,
}

/// What a lookup found for an AoR.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<R> {
    /// The best live binding, as the caller's closure read it.
    Found(R),
    /// The AoR has no live binding (480, RFC 3261 §10.3 / §21.4.18).
    NoBinding,
}

/// The shared table.
#[derive(Debug)]
pub struct Location {
    map: papaya::HashMap<Box<[u8]>, Vec<Binding>>,
    capacity: usize,
    bindings: AtomicUsize,
}

impl Location {
    pub fn new(capacity: usize) -> Location {
        Location {
            map: papaya::HashMap::new(),
            capacity,
            bindings: AtomicUsize::new(0),
        }
    }

    /// Applies a REGISTER (RFC 3261 §10.3 steps 6–7) to `aor` and returns the bindings the
    /// 200 OK lists.
    pub fn register(
        &self,
        aor: &[u8],
        contacts: &[ContactSpec<'_>],
        request: &Request<'_>,
        limits: &Limits,
    ) -> Result<Vec<Binding>, RegisterError> {
        let map = self.map.pin();
        let full = map.len() >= self.capacity;
        let result = map.compute(aor.into(), |entry| {
            let old = entry.map_or(&[][..], |(_, v)| v.as_slice());
            match bindings::apply(old, contacts, request, limits) {
                Err(refusal) => Operation::Abort(Some(RegisterError::Refused(refusal))),
                // Nothing to store and nothing stored: a 200 without bindings.
                Ok(new) if new.is_empty() && entry.is_none() => Operation::Abort(None),
                Ok(new) if new.is_empty() => Operation::Remove,
                Ok(_) if entry.is_none() && full => Operation::Abort(Some(RegisterError::Full)),
                Ok(new) => Operation::Insert(new),
            }
        });
        match result {
            Compute::Inserted(_, new) => {
                self.bindings.fetch_add(new.len(), Ordering::Relaxed);
                Ok(new.clone())
            }
            Compute::Updated { old, new } => {
                self.adjust(old.1.len(), new.1.len());
                Ok(new.1.clone())
            }
            Compute::Removed(_, old) => {
                self.adjust(old.len(), 0);
                Ok(Vec::new())
            }
            Compute::Aborted(None) => Ok(Vec::new()),
            Compute::Aborted(Some(e)) => Err(e),
        }
    }

    fn adjust(&self, old: usize, new: usize) {
        if new >= old {
            self.bindings.fetch_add(new - old, Ordering::Relaxed);
        } else {
            self.bindings.fetch_sub(old - new, Ordering::Relaxed);
        }
    }

    /// The best live binding of `aor` given to `read` (no allocation); `None` when the AoR
    /// has no entry at all.
    pub fn lookup<R>(
        &self,
        aor: &[u8],
        now: Instant,
        read: impl FnOnce(&Binding) -> R,
    ) -> Option<Lookup<R>> {
        let map = self.map.pin();
        let list = map.get(aor)?;
        Some(match bindings::best(list, now) {
            Some(b) => Lookup::Found(read(b)),
            None => Lookup::NoBinding,
        })
    }

    /// Removes expired bindings (and AoRs left without any); returns how many went.
    pub fn sweep(&self, now: Instant) -> usize {
        let map = self.map.pin();
        let stale: Vec<Box<[u8]>> = map
            .iter()
            .filter(|(_, v)| v.iter().any(|b| b.expires <= now))
            .map(|(k, _)| k.clone())
            .collect();
        let mut removed = 0;
        for key in stale {
            let result = map.compute(key, |entry| match entry {
                None => Operation::Abort(()),
                Some((_, v)) => {
                    let live: Vec<Binding> =
                        v.iter().filter(|b| b.expires > now).cloned().collect();
                    if live.is_empty() {
                        Operation::Remove
                    } else {
                        Operation::Insert(live)
                    }
                }
            });
            match result {
                Compute::Updated { old, new } => {
                    removed += old.1.len() - new.1.len();
                    self.adjust(old.1.len(), new.1.len());
                }
                Compute::Removed(_, old) => {
                    removed += old.len();
                    self.adjust(old.len(), 0);
                }
                _ => {}
            }
        }
        removed
    }

    /// Sets `aor`'s bindings to `list` as another node wrote them to the shared store
    /// (expired ones skipped, an empty list removes the AoR); a new AoR past the capacity
    /// is not added.
    pub fn replace(&self, aor: &[u8], list: Vec<Binding>, now: Instant) {
        let live: Vec<Binding> = list.into_iter().filter(|b| b.expires > now).collect();
        let map = self.map.pin();
        if live.is_empty() {
            if let Some(old) = map.remove(aor) {
                self.adjust(old.len(), 0);
            }
            return;
        }
        if map.get(aor).is_none() && map.len() >= self.capacity {
            return;
        }
        let count = live.len();
        match map.insert(aor.into(), live) {
            Some(old) => self.adjust(old.len(), count),
            None => {
                self.bindings.fetch_add(count, Ordering::Relaxed);
            }
        }
    }

    /// Puts bindings back (a snapshot read at start); expired ones are skipped.
    pub fn restore(&self, aor: &[u8], list: Vec<Binding>, now: Instant) {
        let live: Vec<Binding> = list.into_iter().filter(|b| b.expires > now).collect();
        if live.is_empty() || self.map.len() >= self.capacity {
            return;
        }
        let count = live.len();
        if let Some(old) = self.map.pin().insert(aor.into(), live) {
            self.adjust(old.len(), count);
        } else {
            self.bindings.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Calls `visit` with every AoR and its bindings (off the workers' path: the keepalive
    /// schedule), without copying them.
    pub fn each(&self, mut visit: impl FnMut(&[u8], &[Binding])) {
        for (aor, bindings) in self.map.pin().iter() {
            visit(aor, bindings);
        }
    }

    /// Removes `aor`'s bindings whose flow `dead` names; returns what is left when any went.
    pub fn remove_where(
        &self,
        aor: &[u8],
        dead: impl Fn(&Binding) -> bool,
    ) -> Option<Vec<Binding>> {
        let map = self.map.pin();
        let result = map.compute(aor.into(), |entry| match entry {
            Some((_, v)) if v.iter().any(&dead) => {
                let live: Vec<Binding> = v.iter().filter(|b| !dead(b)).cloned().collect();
                if live.is_empty() {
                    Operation::Remove
                } else {
                    Operation::Insert(live)
                }
            }
            _ => Operation::Abort(()),
        });
        match result {
            Compute::Updated { old, new } => {
                self.adjust(old.1.len(), new.1.len());
                Some(new.1.clone())
            }
            Compute::Removed(_, old) => {
                self.adjust(old.len(), 0);
                Some(Vec::new())
            }
            _ => None,
        }
    }

    /// Every AoR with its bindings (for `/location` and the snapshot), sorted by AoR.
    pub fn entries(&self) -> Vec<(Box<[u8]>, Vec<Binding>)> {
        let map = self.map.pin();
        let mut all: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// AoRs held.
    pub fn aors(&self) -> usize {
        self.map.len()
    }

    /// Bindings held (expired ones count until swept).
    pub fn bindings(&self) -> usize {
        self.bindings.load(Ordering::Relaxed)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Flow;
    use crate::sip::Transport;
    use std::time::Duration;

    fn request(call_id: &str, cseq: u32, now: Instant) -> Request<'_> {
        Request {
            wildcard: false,
            expires: None,
            call_id: call_id.as_bytes(),
            cseq,
            flow: Flow::new(
                Transport::Udp,
                "192.0.2.1:5062".parse().unwrap(),
                "127.0.0.1:5060".parse().unwrap(),
            ),
            path: None,
            now,
        }
    }

    fn contact(uri: &str, expires: Option<u32>) -> ContactSpec<'_> {
        ContactSpec {
            uri: uri.as_bytes(),
            expires,
            q: None,
            instance: None,
            reg_id: None,
        }
    }

    #[test]
    fn register_lookup_unregister() {
        let loc = Location::new(10);
        let now = Instant::now();
        let limits = Limits::default();
        assert_eq!(loc.lookup(b"alice@edge.example", now, |_| ()), None);
        let got = loc
            .register(
                b"alice@edge.example",
                &[contact("sip:alice@10.0.0.1", None)],
                &request("c", 1, now),
                &limits,
            )
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((loc.aors(), loc.bindings()), (1, 1));
        let found = loc.lookup(b"alice@edge.example", now, |b| b.flow.source.port());
        assert_eq!(found, Some(Lookup::Found(5062)));
        let gone = loc
            .register(
                b"alice@edge.example",
                &[contact("sip:alice@10.0.0.1", Some(0))],
                &request("c", 2, now),
                &limits,
            )
            .unwrap();
        assert!(gone.is_empty());
        assert_eq!((loc.aors(), loc.bindings()), (0, 0));
        // Removing what is not there is a 200 with no bindings, and stores nothing.
        let none = loc
            .register(
                b"bob@edge.example",
                &[contact("sip:bob@h", Some(0))],
                &request("d", 1, now),
                &limits,
            )
            .unwrap();
        assert!(none.is_empty());
        assert_eq!(loc.aors(), 0);
    }

    #[test]
    fn refusals_change_nothing_and_capacity_holds() {
        let loc = Location::new(1);
        let now = Instant::now();
        let limits = Limits::default();
        loc.register(
            b"a@d",
            &[contact("sip:a@h", None)],
            &request("c", 5, now),
            &limits,
        )
        .unwrap();
        let err = loc.register(
            b"a@d",
            &[contact("sip:a@h", None)],
            &request("c", 4, now),
            &limits,
        );
        assert_eq!(err, Err(RegisterError::Refused(Refusal::OutOfOrder)));
        let full = loc.register(
            b"b@d",
            &[contact("sip:b@h", None)],
            &request("x", 1, now),
            &limits,
        );
        assert_eq!(full, Err(RegisterError::Full));
        // An existing AoR still refreshes when the table is full.
        loc.register(
            b"a@d",
            &[contact("sip:a@h", None)],
            &request("c", 6, now),
            &limits,
        )
        .unwrap();
    }

    #[test]
    fn lookups_skip_expired_bindings_and_sweep_frees_them() {
        let loc = Location::new(10);
        let now = Instant::now();
        let limits = Limits::default();
        loc.register(
            b"a@d",
            &[contact("sip:a@h", Some(60)), contact("sip:b@h", Some(600))],
            &request("c", 1, now),
            &limits,
        )
        .unwrap();
        let later = now + Duration::from_secs(61);
        let found = loc.lookup(b"a@d", later, |b| b.contact.clone());
        assert_eq!(found, Some(Lookup::Found(b"sip:b@h"[..].into())));
        assert_eq!(loc.sweep(later), 1);
        assert_eq!(loc.bindings(), 1);
        let end = now + Duration::from_secs(601);
        assert_eq!(loc.lookup(b"a@d", end, |_| ()), Some(Lookup::NoBinding));
        assert_eq!(loc.sweep(end), 1);
        assert_eq!((loc.aors(), loc.bindings()), (0, 0));
    }
}

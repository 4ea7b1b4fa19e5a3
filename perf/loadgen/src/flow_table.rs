//! The relay's NAT table: one entry (holding an upstream socket) per client address, so that
//! answers and upstream-originated requests find their way back to the right client.
//!
//! Bounded: at most `max_flows` entries; a flow silent for `idle_ns` is expired by
//! [`FlowTable::expire`]. Entries live in numbered slots (the relay's poll tokens); a freed slot
//! is reused. Time is an input, in nanoseconds.

use std::collections::HashMap;
use std::net::SocketAddr;

/// One client's entry.
#[derive(Debug)]
pub struct Flow<T> {
    pub client: SocketAddr,
    pub last_seen_ns: u64,
    pub value: T,
}

/// The table is at its bound and no flow is idle enough to make room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

pub struct FlowTable<T> {
    by_client: HashMap<SocketAddr, usize>,
    slots: Vec<Option<Flow<T>>>,
    free: Vec<usize>,
    max_flows: usize,
    idle_ns: u64,
}

impl<T> FlowTable<T> {
    pub fn new(max_flows: usize, idle_ns: u64) -> FlowTable<T> {
        FlowTable {
            by_client: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            max_flows,
            idle_ns,
        }
    }

    /// The slot of `client`'s flow, marking it seen at `now_ns`.
    pub fn find(&mut self, client: SocketAddr, now_ns: u64) -> Option<usize> {
        let slot = *self.by_client.get(&client)?;
        self.touch(slot, now_ns);
        Some(slot)
    }

    /// Adds a flow for `client` (which must not have one) and returns its slot.
    pub fn insert(&mut self, client: SocketAddr, now_ns: u64, value: T) -> Result<usize, Full> {
        if self.by_client.len() >= self.max_flows {
            return Err(Full);
        }
        let flow = Flow {
            client,
            last_seen_ns: now_ns,
            value,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(flow);
                slot
            }
            None => {
                self.slots.push(Some(flow));
                self.slots.len() - 1
            }
        };
        self.by_client.insert(client, slot);
        Ok(slot)
    }

    pub fn get(&self, slot: usize) -> Option<&Flow<T>> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<&mut Flow<T>> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    /// Marks the flow in `slot` seen at `now_ns`.
    pub fn touch(&mut self, slot: usize, now_ns: u64) {
        if let Some(Some(flow)) = self.slots.get_mut(slot) {
            flow.last_seen_ns = flow.last_seen_ns.max(now_ns);
        }
    }

    /// Removes every flow silent since `now_ns - idle_ns`, handing each to `on_expired`.
    pub fn expire(&mut self, now_ns: u64, mut on_expired: impl FnMut(usize, Flow<T>)) {
        let deadline = now_ns.saturating_sub(self.idle_ns);
        for (slot, entry) in self.slots.iter_mut().enumerate() {
            if entry.as_ref().is_some_and(|f| f.last_seen_ns < deadline)
                && let Some(flow) = entry.take()
            {
                self.by_client.remove(&flow.client);
                self.free.push(slot);
                on_expired(slot, flow);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn client(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn each_client_gets_one_flow() {
        let mut t = FlowTable::new(10, 30 * S);
        let a = t.insert(client(1), 0, "a").unwrap();
        let b = t.insert(client(2), 0, "b").unwrap();
        assert_ne!(a, b);
        assert_eq!(t.find(client(1), S), Some(a));
        assert_eq!(t.get(b).unwrap().value, "b");
        assert_eq!(t.find(client(3), S), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn the_bound_holds() {
        let mut t = FlowTable::new(2, 30 * S);
        t.insert(client(1), 0, ()).unwrap();
        t.insert(client(2), 0, ()).unwrap();
        assert_eq!(t.insert(client(3), 0, ()), Err(Full));
    }

    #[test]
    fn idle_flows_expire_and_their_slots_are_reused() {
        let mut t = FlowTable::new(2, 30 * S);
        let old = t.insert(client(1), 0, ()).unwrap();
        t.insert(client(2), 0, ()).unwrap();
        t.find(client(2), 20 * S);
        let mut expired = Vec::new();
        t.expire(40 * S, |slot, flow| expired.push((slot, flow.client)));
        assert_eq!(expired, [(old, client(1))]);
        assert_eq!(t.find(client(1), 40 * S), None);
        assert!(t.get(old).is_none());
        assert_eq!(t.insert(client(3), 40 * S, ()), Ok(old));
    }
}

//! One worker's connections: a slab of slots with generations, and an index by peer address.
//!
//! A connection lives in a slot; its [`ConnRef`] (worker, slot, generation) is what the core
//! carries in Via. Removing a connection bumps its slot's generation, so a reference to it
//! finds nothing afterwards even when the slot holds a new connection. The peer index finds
//! the connection to reuse for a destination: a client that connected from that address, or
//! the connection this worker opened toward it (its pool). Inserting and removing allocate at
//! most when the table grows; lookups never allocate.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::connection::Connection;
use super::id::ConnRef;

struct Slot {
    generation: u32,
    connection: Option<Connection>,
}

pub(crate) struct Table {
    worker: usize,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_peer: HashMap<SocketAddr, u32>,
    open: usize,
    max: usize,
}

impl Table {
    /// An empty table for worker `worker`, holding at most `max` connections.
    pub(crate) fn new(worker: usize, max: usize) -> Table {
        let room = max.min(1024);
        Table {
            worker,
            slots: Vec::with_capacity(room),
            free: Vec::with_capacity(room),
            by_peer: HashMap::with_capacity(room),
            open: 0,
            max,
        }
    }

    /// Open connections.
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    /// Slots in use or ever used (the range of slot numbers).
    pub(crate) fn slots(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The reference a new connection would get, or `None` when the table is full.
    /// The slot stays free until [`Table::fill`].
    pub(crate) fn vacant(&self) -> Option<ConnRef> {
        if self.open >= self.max {
            return None;
        }
        let slot = match self.free.last() {
            Some(&slot) => slot,
            None => self.slots.len() as u32,
        };
        let generation = self.slots.get(slot as usize).map_or(0, |s| s.generation);
        Some(ConnRef::new(self.worker, slot, generation))
    }

    /// Puts `connection` in the slot [`Table::vacant`] just named; indexes it by peer.
    pub(crate) fn fill(&mut self, at: ConnRef, connection: Connection) {
        if self.free.last() == Some(&at.slot) {
            self.free.pop();
        } else {
            self.slots.push(Slot {
                generation: at.generation,
                connection: None,
            });
        }
        if let Some(slot) = self.slots.get_mut(at.slot as usize) {
            self.by_peer.insert(connection.peer, at.slot);
            slot.connection = Some(connection);
            self.open += 1;
        }
    }

    /// The live connection `at` names (this worker, same generation).
    pub(crate) fn find(&self, at: ConnRef) -> Option<u32> {
        let slot = self.slots.get(at.slot as usize)?;
        let live = at.worker == self.worker
            && slot.generation == at.generation
            && slot.connection.is_some();
        live.then_some(at.slot)
    }

    /// The connection in `slot`.
    pub(crate) fn get(&self, slot: u32) -> Option<&Connection> {
        self.slots.get(slot as usize)?.connection.as_ref()
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut Connection> {
        self.slots.get_mut(slot as usize)?.connection.as_mut()
    }

    /// The reference of the connection in `slot`.
    pub(crate) fn reference(&self, slot: u32) -> ConnRef {
        let generation = self.slots.get(slot as usize).map_or(0, |s| s.generation);
        ConnRef::new(self.worker, slot, generation)
    }

    /// The connection to reuse toward `peer`, if any.
    pub(crate) fn by_peer(&self, peer: SocketAddr) -> Option<u32> {
        self.by_peer.get(&peer).copied()
    }

    /// Takes the connection out of `slot` and retires the slot's generation.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<(ConnRef, Connection)> {
        let reference = self.reference(slot);
        let entry = self.slots.get_mut(slot as usize)?;
        let connection = entry.connection.take()?;
        entry.generation = ConnRef::next_generation(entry.generation);
        self.free.push(slot);
        self.open -= 1;
        if self.by_peer.get(&connection.peer) == Some(&slot) {
            self.by_peer.remove(&connection.peer);
        }
        Some((reference, connection))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::connection::Origin;
    use super::*;

    fn connection(peer: SocketAddr) -> Connection {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let socket = mio::net::TcpStream::from_std(std);
        let local = listener.local_addr().unwrap();
        Connection::new(
            socket,
            peer,
            local,
            Origin::Accepted,
            (super::super::connection::Layers::tcp(), (4096, 4096)),
            Instant::now(),
        )
    }

    #[test]
    fn slots_are_reused_with_a_new_generation() {
        let mut table = Table::new(3, 2);
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        let first = table.vacant().unwrap();
        table.fill(first, connection(a));
        let second = table.vacant().unwrap();
        table.fill(second, connection(b));
        assert_eq!(table.vacant(), None, "full at two");
        assert_eq!(table.by_peer(a), Some(first.slot));
        assert_eq!(table.find(first), Some(first.slot));

        table.remove(first.slot).unwrap();
        assert_eq!(table.find(first), None, "a stale reference finds nothing");
        assert_eq!(table.by_peer(a), None);
        let third = table.vacant().unwrap();
        assert_eq!(third.slot, first.slot);
        assert_ne!(third.generation, first.generation);
        table.fill(third, connection(a));
        assert_eq!(table.find(first), None);
        assert_eq!(table.find(third), Some(third.slot));
        assert_eq!(
            table.find(ConnRef::new(4, third.slot, third.generation)),
            None
        );
        assert_eq!(table.open(), 2);
    }
}

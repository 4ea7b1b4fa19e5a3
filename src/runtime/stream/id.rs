//! What a [`ConnectionId`] means to the runtime: the worker that owns the connection, the
//! connection's slot in that worker's table, and the slot's generation.
//!
//! Layout of the 64 bits, high to low: worker (10 bits, the settings allow 1,024 workers),
//! generation (30 bits), slot (24 bits, [`MAX_CONNECTIONS_PER_WORKER`]). A slot's generation
//! changes every time the slot is reused, so an id that outlived its connection (carried in
//! a Via while the connection closed) never reaches the connection that took the slot next.
//! The core treats the id as opaque; it travels in this proxy's Via, protected by a keyed tag.
//!
//! [`MAX_CONNECTIONS_PER_WORKER`]: crate::settings::MAX_CONNECTIONS_PER_WORKER

use crate::proxy::ConnectionId;

const SLOT_BITS: u32 = 24;
const GENERATION_BITS: u32 = 30;
const WORKER_BITS: u32 = 10;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const GENERATION_MASK: u64 = (1 << GENERATION_BITS) - 1;
const WORKER_MASK: u64 = (1 << WORKER_BITS) - 1;

/// A connection as the runtime locates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConnRef {
    pub(crate) worker: usize,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

impl ConnRef {
    /// A reference; fields wider than their bits are masked (callers keep them in range).
    pub(crate) fn new(worker: usize, slot: u32, generation: u32) -> ConnRef {
        ConnRef {
            worker: worker & WORKER_MASK as usize,
            slot: slot & SLOT_MASK as u32,
            generation: generation & GENERATION_MASK as u32,
        }
    }

    /// The next generation of a slot, wrapping within its bits.
    pub(crate) fn next_generation(generation: u32) -> u32 {
        generation.wrapping_add(1) & GENERATION_MASK as u32
    }

    pub(crate) fn id(self) -> ConnectionId {
        let worker = (self.worker as u64 & WORKER_MASK) << (GENERATION_BITS + SLOT_BITS);
        let generation = (u64::from(self.generation) & GENERATION_MASK) << SLOT_BITS;
        ConnectionId(worker | generation | (u64::from(self.slot) & SLOT_MASK))
    }

    /// Reads any 64-bit value: ids come back from the wire (tag-checked by the core, but a
    /// forged or stale id must still decode to something harmless).
    pub(crate) fn from_id(id: ConnectionId) -> ConnRef {
        ConnRef {
            worker: ((id.0 >> (GENERATION_BITS + SLOT_BITS)) & WORKER_MASK) as usize,
            generation: ((id.0 >> SLOT_BITS) & GENERATION_MASK) as u32,
            slot: (id.0 & SLOT_MASK) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for (worker, slot, generation) in
            [(0, 0, 0), (1, 7, 3), (1023, (1 << 24) - 1, (1 << 30) - 1)]
        {
            let r = ConnRef::new(worker, slot, generation);
            assert_eq!(ConnRef::from_id(r.id()), r);
        }
    }

    #[test]
    fn generations_wrap_and_any_value_decodes() {
        assert_eq!(ConnRef::next_generation((1 << 30) - 1), 0);
        let r = ConnRef::from_id(ConnectionId(u64::MAX));
        assert_eq!(
            (r.worker, r.slot, r.generation),
            (1023, (1 << 24) - 1, (1 << 30) - 1)
        );
        assert_ne!(ConnRef::new(0, 5, 1).id(), ConnRef::new(0, 5, 2).id());
        assert_ne!(ConnRef::new(0, 5, 1).id(), ConnRef::new(1, 5, 1).id());
    }
}

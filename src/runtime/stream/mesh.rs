//! What the workers share for streams, none of it locked: each worker's hand-off queue and
//! waker, a pool of hand-off buffers, the directory of accepted connections by peer address,
//! and the count of open connections.
//!
//! Contract:
//! - A message that must leave over a connection another worker owns is copied into a pooled
//!   buffer and sent on that worker's bounded `crossbeam-channel` queue ([`Mesh::hand_off`]);
//!   the sender wakes the owner's `mio::Waker` once per batch ([`Mesh::wake`]). A full queue
//!   drops the message (the caller counts it); nothing blocks. The owner writes the bytes on
//!   its connection and gives the buffer back ([`Mesh::recycle`]). Buffers keep their
//!   capacity, so once the pool is warm a hand-off allocates nothing.
//! - The directory maps a client's address to its accepted connection, so a request toward
//!   that client from any worker reuses the client's connection (it may be behind NAT and
//!   reachable no other way). It is written when a connection is accepted or closed, read
//!   only when a worker has no connection of its own toward a destination.
//! - [`Mesh::reserve`] / [`Mesh::release`] keep the process-wide connection count under its
//!   limit: one atomic operation per connection, none per message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use mio::Waker;

use crate::proxy::{ConnectionId, Transmit};
use crate::runtime::note::Note;

/// The first capacity of a hand-off buffer (most SIP messages fit; larger ones grow it once).
const BUFFER_START: usize = 4 * 1024;
/// Spare buffers the pool keeps; a burst beyond this allocates and frees the excess.
const POOL_MAX: usize = 1024;

/// A message handed to the worker that owns the connection it must leave on.
pub(crate) struct Handoff {
    pub(crate) bytes: Vec<u8>,
    /// Where it goes; `connection` names the owner's connection (or is `None` when the
    /// owner should pick one by `destination`).
    pub(crate) transmit: Transmit,
    pub(crate) note: Note,
}

pub(crate) struct Mesh {
    inboxes: Vec<Sender<Handoff>>,
    wakers: Vec<Arc<Waker>>,
    spare_in: Sender<Vec<u8>>,
    spare_out: Receiver<Vec<u8>>,
    directory: papaya::HashMap<SocketAddr, ConnectionId>,
    open: AtomicUsize,
    max_open: usize,
}

/// The owner's queue was full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueueFull;

impl Mesh {
    /// A mesh for one worker per waker; returns it and each worker's queue to read.
    pub(crate) fn new(
        wakers: Vec<Arc<Waker>>,
        queue: usize,
        max_open: usize,
    ) -> (Arc<Mesh>, Vec<Receiver<Handoff>>) {
        let (inboxes, outboxes): (Vec<_>, Vec<_>) = wakers.iter().map(|_| bounded(queue)).unzip();
        let (spare_in, spare_out) = bounded(queue.saturating_mul(wakers.len()).clamp(1, POOL_MAX));
        let mesh = Mesh {
            inboxes,
            wakers,
            spare_in,
            spare_out,
            directory: papaya::HashMap::new(),
            open: AtomicUsize::new(0),
            max_open,
        };
        (Arc::new(mesh), outboxes)
    }

    pub(crate) fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// Copies `bytes` into a pooled buffer and queues it for `worker`.
    pub(crate) fn hand_off(
        &self,
        worker: usize,
        bytes: &[u8],
        transmit: Transmit,
        note: Note,
    ) -> Result<(), QueueFull> {
        let inbox = self.inboxes.get(worker).ok_or(QueueFull)?;
        let mut buffer = self
            .spare_out
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUFFER_START));
        buffer.clear();
        buffer.extend_from_slice(bytes);
        let handoff = Handoff {
            bytes: buffer,
            transmit,
            note,
        };
        match inbox.try_send(handoff) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(h) | TrySendError::Disconnected(h)) => {
                self.recycle(h.bytes);
                Err(QueueFull)
            }
        }
    }

    /// Interrupts `worker`'s poll so it reads its queue.
    pub(crate) fn wake(&self, worker: usize) {
        if let Some(waker) = self.wakers.get(worker) {
            let _ = waker.wake();
        }
    }

    /// Gives a hand-off buffer back to the pool (dropped when the pool is full).
    pub(crate) fn recycle(&self, bytes: Vec<u8>) {
        let _ = self.spare_in.try_send(bytes);
    }

    /// Counts one more open connection unless the process-wide limit is reached.
    pub(crate) fn reserve(&self) -> bool {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_open {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Counts one connection closed.
    pub(crate) fn release(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// The accepted connection whose client is at `peer`, whichever worker owns it.
    pub(crate) fn client(&self, peer: SocketAddr) -> Option<ConnectionId> {
        self.directory.pin().get(&peer).copied()
    }

    /// Records an accepted connection.
    pub(crate) fn add_client(&self, peer: SocketAddr, id: ConnectionId) {
        self.directory.pin().insert(peer, id);
    }

    /// Forgets an accepted connection (unless a newer one from the same peer replaced it).
    pub(crate) fn remove_client(&self, peer: SocketAddr, id: ConnectionId) {
        let _ = self.directory.pin().remove_if(&peer, |_, v| *v == id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{Direction, Transport};
    use crate::runtime::note::Kind;

    fn mesh(workers: usize, queue: usize) -> (Arc<Mesh>, Vec<Receiver<Handoff>>, Vec<mio::Poll>) {
        let polls: Vec<mio::Poll> = (0..workers).map(|_| mio::Poll::new().unwrap()).collect();
        let wakers = polls
            .iter()
            .map(|p| Arc::new(Waker::new(p.registry(), mio::Token(0)).unwrap()))
            .collect();
        let (mesh, inboxes) = Mesh::new(wakers, queue, 2);
        (mesh, inboxes, polls)
    }

    fn transmit() -> Transmit {
        Transmit {
            destination: "127.0.0.1:5060".parse().unwrap(),
            transport: Transport::Tcp,
            local: "127.0.0.1:5070".parse().unwrap(),
            len: 5,
            direction: Direction::Response,
            connection: Some(ConnectionId(7)),
            name: None,
        }
    }

    #[test]
    fn hand_offs_are_bounded_and_buffers_come_back() {
        let (mesh, inboxes, _polls) = mesh(2, 1);
        let note = Note {
            kind: Kind::Forward(Direction::Response),
            arrival_ns: 1,
        };
        assert_eq!(mesh.hand_off(1, b"hello", transmit(), note), Ok(()));
        assert_eq!(mesh.hand_off(1, b"again", transmit(), note), Err(QueueFull));
        assert_eq!(
            mesh.hand_off(9, b"nobody", transmit(), note),
            Err(QueueFull)
        );
        let got = inboxes[1].try_recv().unwrap();
        assert_eq!(got.bytes, b"hello");
        let capacity = got.bytes.capacity();
        mesh.recycle(got.bytes);
        mesh.wake(1);
        assert_eq!(mesh.hand_off(1, b"third", transmit(), note), Ok(()));
        assert_eq!(inboxes[1].try_recv().unwrap().bytes.capacity(), capacity);
    }

    #[test]
    fn the_connection_limit_and_the_directory() {
        let (mesh, _inboxes, _polls) = mesh(1, 1);
        assert!(mesh.reserve() && mesh.reserve());
        assert!(!mesh.reserve(), "the limit is two");
        mesh.release();
        assert!(mesh.reserve());
        let peer: SocketAddr = "[::1]:4000".parse().unwrap();
        mesh.add_client(peer, ConnectionId(1));
        assert_eq!(mesh.client(peer), Some(ConnectionId(1)));
        mesh.remove_client(peer, ConnectionId(2));
        assert_eq!(
            mesh.client(peer),
            Some(ConnectionId(1)),
            "not the same connection"
        );
        mesh.remove_client(peer, ConnectionId(1));
        assert_eq!(mesh.client(peer), None);
    }
}

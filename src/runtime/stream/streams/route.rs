//! Where a stream message goes (see the parent module): the connection the core named, else
//! one toward the destination, here or on the worker that owns it, else a new one; and the
//! hand-offs between workers, both ways.

use log::debug;

use super::super::connection::{Connection, Origin};
use super::super::id::ConnRef;
use super::super::mesh::Handoff;
use super::{Fate, HANDOFFS_PER_TURN, Outgoing, Route, Streams};
use crate::proxy::{ConnectionId, PeerName, Transmit, Transport};
use crate::record::Recorder;
use crate::record::StreamEvent;
use crate::runtime::note::Note;

impl Streams {
    /// Routes one stream message whose bytes are `out[start..start + transmit.len]`.
    pub(crate) fn enqueue(
        &mut self,
        out: &[u8],
        start: usize,
        transmit: Transmit,
        note: Note,
        recorder: &mut impl Recorder,
    ) {
        let route = match transmit.transport {
            Transport::Tcp | Transport::Tls | Transport::Ws | Transport::Wss => {
                self.route(&transmit, recorder)
            }
            other => {
                debug!(
                    "worker {}: no {other} transport for {transmit:?}",
                    self.worker
                );
                return recorder.send_error();
            }
        };
        let connection = match route {
            Route::Here(slot) => slot,
            Route::Worker(worker, id) => {
                let bytes = out.get(start..start + transmit.len).unwrap_or_default();
                return self.hand_off(worker, id, bytes, transmit, note, recorder);
            }
            Route::Open => match self.open_for(&transmit, recorder) {
                Some(slot) => slot,
                None => return recorder.send_error(),
            },
        };
        self.note_sent(
            connection,
            out.get(start..start + transmit.len).unwrap_or_default(),
        );
        self.outgoing.push(Outgoing {
            connection,
            start,
            len: transmit.len,
            note,
            fate: Fate::Pending,
        });
    }

    fn route(&self, transmit: &Transmit, recorder: &mut impl Recorder) -> Route {
        if let Some(id) = transmit.connection {
            let at = ConnRef::from_id(id);
            if at.worker != self.worker && at.worker < self.mesh.workers() {
                return Route::Worker(at.worker, id);
            }
            if let Some(slot) = self.usable(self.table.find(at)) {
                return Route::Here(slot);
            }
            recorder.stream_event(StreamEvent::ConnectionGone);
        }
        self.by_destination(transmit)
    }

    /// A connection toward the destination over the transport (and, over TLS, verified
    /// against the name): this worker's own, else a client's on another worker (not for a
    /// name: a client was never verified as a server), else a new one.
    fn by_destination(&self, transmit: &Transmit) -> Route {
        let destination = transmit.destination;
        if let Some(slot) = self.usable_for(self.table.by_peer(destination), transmit) {
            return Route::Here(slot);
        }
        if transmit.name.is_some() {
            return Route::Open;
        }
        match self.mesh.client(destination) {
            Some(id) if ConnRef::from_id(id).worker != self.worker => {
                Route::Worker(ConnRef::from_id(id).worker, id)
            }
            _ => Route::Open,
        }
    }

    fn usable(&self, slot: Option<u32>) -> Option<u32> {
        slot.filter(|&s| self.table.get(s).is_some_and(Connection::usable))
    }

    /// `usable`, and carrying the transport of `transmit` (a TLS message never takes a plain
    /// connection); one this worker opened, only toward the same name (connections are
    /// reused per address and name, RFC 5922 §7.2); a client's, only when no name is asked.
    fn usable_for(&self, slot: Option<u32>, transmit: &Transmit) -> Option<u32> {
        let name = transmit.name.as_ref().map(PeerName::hash);
        self.usable(slot).filter(|&s| {
            self.table.get(s).is_some_and(|c| {
                c.layers.transport == transmit.transport
                    && match c.origin {
                        Origin::Opened => c.layers.name == name,
                        Origin::Accepted => name.is_none(),
                    }
            })
        })
    }

    /// A new connection for `transmit` (never toward a WebSocket client: RFC 7118 §5).
    fn open_for(&mut self, transmit: &Transmit, recorder: &mut impl Recorder) -> Option<u32> {
        if matches!(transmit.transport, Transport::Ws | Transport::Wss) {
            recorder.stream_event(StreamEvent::WsNoConnection);
            return None;
        }
        let from = (transmit.local, transmit.transport);
        self.open(transmit.destination, from, transmit.name.as_ref(), recorder)
    }

    fn hand_off(
        &mut self,
        worker: usize,
        id: ConnectionId,
        bytes: &[u8],
        transmit: Transmit,
        note: Note,
        recorder: &mut impl Recorder,
    ) {
        let transmit = Transmit {
            connection: Some(id),
            ..transmit
        };
        match self.mesh.hand_off(worker, bytes, transmit, note) {
            Ok(()) => {
                recorder.stream_event(StreamEvent::HandedOff);
                if let Some(wake) = self.wake.get_mut(worker) {
                    *wake = true;
                }
            }
            Err(_) => {
                recorder.stream_event(StreamEvent::HandoffOverflow);
                recorder.send_error();
            }
        }
    }

    /// Writes what other workers handed over, on this worker's connections.
    pub(crate) fn receive_handoffs(&mut self, recorder: &mut impl Recorder) {
        for _ in 0..HANDOFFS_PER_TURN {
            let Ok(handoff) = self.inbox.try_recv() else {
                return;
            };
            recorder.stream_event(StreamEvent::HandoffReceived);
            let Handoff {
                bytes,
                transmit,
                note,
            } = handoff;
            match self.owner_route(&transmit, recorder) {
                Some(slot) => {
                    self.note_sent(slot, &bytes);
                    self.send_bytes(slot, &bytes, Some(note), recorder)
                }
                None => recorder.send_error(),
            }
            self.mesh.recycle(bytes);
        }
    }

    /// The connection for a hand-off: the one named if still open, else one of this
    /// worker's toward the destination, else a new one (never handed on again).
    fn owner_route(&mut self, transmit: &Transmit, recorder: &mut impl Recorder) -> Option<u32> {
        let named = transmit.connection.map(ConnRef::from_id);
        if let Some(slot) = self.usable(named.and_then(|at| self.table.find(at))) {
            return Some(slot);
        }
        if named.is_some() {
            recorder.stream_event(StreamEvent::ConnectionGone);
        }
        match self.usable_for(self.table.by_peer(transmit.destination), transmit) {
            Some(slot) => Some(slot),
            None => self.open_for(transmit, recorder),
        }
    }

    /// Wakes each worker this batch handed messages to, once.
    pub(super) fn wake_peers(&mut self) {
        for (worker, wake) in self.wake.iter_mut().enumerate() {
            if std::mem::take(wake) {
                self.mesh.wake(worker);
            }
        }
    }
}

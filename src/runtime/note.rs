//! What the recorder is told about a message once its send has returned.

use crate::proxy::Direction;
use crate::record::Recorder;

/// A forwarded message or a locally generated reply.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Forward(Direction),
    Reply(u16),
}

/// A message on its way out: what it is, and when it arrived (ns since the Unix epoch).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Note {
    pub(crate) kind: Kind,
    pub(crate) arrival_ns: u64,
}

impl Note {
    /// Tells `recorder` the message left (or was queued to leave) at `sent_ns`.
    pub(crate) fn sent(self, recorder: &mut impl Recorder, sent_ns: u64) {
        let latency = sent_ns.saturating_sub(self.arrival_ns);
        match self.kind {
            Kind::Forward(direction) => recorder.forwarded(direction, latency),
            Kind::Reply(status) => recorder.replied(status, latency),
        }
    }
}

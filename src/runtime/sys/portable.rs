//! The portable path: one `recv_from` / `send_to` per datagram through std's socket API.
//!
//! Same contract as the Linux backend, without arrival timestamps or kernel drop counts.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use mio::net::UdpSocket;

use super::{DATAGRAM_SLOT, Datagram, Outgoing};

/// Slots for up to `capacity` datagrams received by a burst of `recv_from` calls.
pub(crate) struct RecvBatch {
    data: Box<[u8]>,
    meta: Box<[(usize, SocketAddr)]>,
    received: usize,
}

impl RecvBatch {
    pub(crate) fn new(capacity: usize) -> RecvBatch {
        let capacity = capacity.max(1);
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        RecvBatch {
            data: vec![0u8; capacity * DATAGRAM_SLOT].into_boxed_slice(),
            meta: vec![(0, unspecified); capacity].into_boxed_slice(),
            received: 0,
        }
    }

    /// Receives until the slots are full or the socket would block.
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received = 0;
        while self.received < self.meta.len() {
            let start = self.received * DATAGRAM_SLOT;
            let slot = &mut self.data[start..start + DATAGRAM_SLOT];
            match socket.recv_from(slot) {
                Ok((len, source)) => {
                    self.meta[self.received] = (len, source);
                    self.received += 1;
                }
                Err(e) if self.received > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(self.received)
    }

    pub(crate) fn datagram(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.received {
            return None;
        }
        let (len, source) = self.meta[i];
        let start = i * DATAGRAM_SLOT;
        Some(Datagram {
            data: &self.data[start..start + len],
            source,
            arrival_ns: None,
            truncated: false,
        })
    }

    pub(crate) fn kernel_drops(&self) -> Option<u32> {
        None
    }
}

/// Nothing to keep between sends on the portable path.
pub(crate) struct SendScratch;

impl SendScratch {
    pub(crate) fn new(_capacity: usize) -> SendScratch {
        SendScratch
    }
}

/// Sends each datagram of `queue` with its own `send_to`, setting its `sent`; returns the
/// ICMP errors of earlier sends reported on the way (each such datagram is retried once).
pub(crate) fn send_batch(
    socket: &UdpSocket,
    buffers: &[u8],
    slot_size: usize,
    queue: &mut [Outgoing],
    _scratch: &mut SendScratch,
) -> usize {
    let mut stale = 0;
    for out in queue.iter_mut() {
        let start = (out.slot * slot_size).min(buffers.len());
        let end = (start + out.len).min(buffers.len());
        let bytes = &buffers[start..end];
        out.sent = match socket.send_to(bytes, out.destination) {
            Ok(_) => true,
            Err(e) if super::is_icmp_report(&e) => {
                stale += 1;
                socket.send_to(bytes, out.destination).is_ok()
            }
            Err(_) => false,
        };
    }
    stale
}

pub(crate) fn tune_socket(_socket: &impl AsRawFd) -> io::Result<()> {
    Ok(())
}

pub(crate) fn force_recv_buffer(_socket: &impl AsRawFd, _bytes: usize) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

pub(crate) fn force_send_buffer(_socket: &impl AsRawFd, _bytes: usize) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// No error queue here: ICMP errors reach the portable path only as a send or receive error.
pub(crate) fn report_unreachable(_socket: &impl AsRawFd, _ipv6: bool) -> io::Result<()> {
    Ok(())
}

/// Nothing to read without an error queue.
pub(crate) fn read_unreachable(
    _socket: &impl AsRawFd,
    _unreachable: impl FnMut(SocketAddr),
) -> usize {
    0
}

//! The system-call edge: batched UDP receive and send.
//!
//! Contract: sockets are non-blocking. [`RecvBatch::recv`] fills up to `capacity` datagrams in one
//! `recvmmsg` call and returns `Err(WouldBlock)` when nothing waits; callers drain a readable
//! socket until then. [`SendQueue`] borrows the bytes and destinations it sends for as long as it
//! lives, and [`SendQueue::send`] moves as many as the kernel takes in one `sendmmsg` call. On
//! other Unixes the same API loops over `recvmsg` / `sendmsg`, one datagram per call.
//!
//! This is the only module (with [`crate::stop`]) allowed to use `unsafe`: each block is a system
//! call over buffers that the surrounding safe code owns and keeps alive for the call.
#![allow(unsafe_code)]

use std::io;
use std::marker::PhantomData;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr;

use socket2::SockAddr;

#[cfg(target_os = "linux")]
type MmsgHdr = libc::mmsghdr;

/// The same shape as Linux's `mmsghdr`, for the one-datagram-per-call fallback.
#[cfg(not(target_os = "linux"))]
#[repr(C)]
struct MmsgHdr {
    msg_hdr: libc::msghdr,
    msg_len: libc::c_uint,
}

fn empty_header() -> MmsgHdr {
    // SAFETY: an all-zero mmsghdr is valid: null pointers with zero lengths, no flags.
    unsafe { mem::zeroed() }
}

fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: ptr::null_mut(),
        iov_len: 0,
    }
}

fn empty_storage() -> libc::sockaddr_storage {
    // SAFETY: an all-zero sockaddr_storage is valid (family AF_UNSPEC).
    unsafe { mem::zeroed() }
}

/// Receives up to `capacity` datagrams of at most `slot` bytes each per system call.
pub struct RecvBatch {
    buf: Vec<u8>,
    slot: usize,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
    hdrs: Vec<MmsgHdr>,
    filled: usize,
}

/// One received datagram, borrowed from its [`RecvBatch`].
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    pub bytes: &'a [u8],
    /// The sender; `None` only for an address family this tool does not speak.
    pub source: Option<SocketAddr>,
    /// The datagram was longer than the slot and was cut: callers should skip it.
    pub truncated: bool,
}

impl RecvBatch {
    /// `capacity` datagrams per call (at least 1), each up to `slot` bytes (at least 1).
    pub fn new(capacity: usize, slot: usize) -> RecvBatch {
        let capacity = capacity.max(1);
        let slot = slot.max(1);
        RecvBatch {
            buf: vec![0; capacity * slot],
            slot,
            iovs: (0..capacity).map(|_| empty_iovec()).collect(),
            names: (0..capacity).map(|_| empty_storage()).collect(),
            hdrs: (0..capacity).map(|_| empty_header()).collect(),
            filled: 0,
        }
    }

    /// Receives what waits on `socket`, up to the capacity; `Err(WouldBlock)` when nothing does.
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        self.clear();
        self.recv_more(socket)
    }

    /// Like [`RecvBatch::recv`] but keeps what the batch already holds and fills the free slots
    /// (datagrams of several sockets can then leave in one send). `Ok(0)` when the batch is full.
    pub fn recv_more(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        if self.is_full() {
            return Ok(0);
        }
        self.point_headers_at_buffers();
        let n = recv_many(socket.as_raw_fd(), &mut self.hdrs[self.filled..])?;
        self.filled += n;
        Ok(n)
    }

    /// Forgets the datagrams held.
    pub fn clear(&mut self) {
        self.filled = 0;
    }

    /// Datagrams held.
    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    pub fn is_full(&self) -> bool {
        self.filled == self.hdrs.len()
    }

    /// The datagrams held: those of the last [`RecvBatch::recv`] and any [`RecvBatch::recv_more`].
    pub fn datagrams(&self) -> impl Iterator<Item = Received<'_>> + '_ {
        self.hdrs[..self.filled]
            .iter()
            .zip(self.names.iter())
            .zip(self.buf.chunks(self.slot))
            .map(|((hdr, name), slot)| {
                let len = (hdr.msg_len as usize).min(slot.len());
                Received {
                    bytes: &slot[..len],
                    source: socket_addr(name, hdr.msg_hdr.msg_namelen),
                    truncated: hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                }
            })
    }

    /// Points the free slots' headers at their buffer and address space.
    fn point_headers_at_buffers(&mut self) {
        let name_len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let slots = self.buf.chunks_mut(self.slot);
        let parts = self
            .hdrs
            .iter_mut()
            .zip(&mut self.iovs)
            .zip(&mut self.names);
        for (((hdr, iov), name), slot) in parts.zip(slots).skip(self.filled) {
            iov.iov_base = slot.as_mut_ptr().cast();
            iov.iov_len = slot.len();
            *hdr = empty_header();
            hdr.msg_hdr.msg_name = ptr::from_mut(name).cast();
            hdr.msg_hdr.msg_namelen = name_len;
            hdr.msg_hdr.msg_iov = ptr::from_mut(iov);
            hdr.msg_hdr.msg_iovlen = 1;
        }
    }
}

/// Reusable space for the headers of one `sendmmsg` call. Not `Send`: one per thread.
pub struct SendScratch {
    iovs: Vec<libc::iovec>,
    hdrs: Vec<MmsgHdr>,
}

impl SendScratch {
    /// Room for `capacity` datagrams per call (at least 1).
    pub fn new(capacity: usize) -> SendScratch {
        let capacity = capacity.max(1);
        SendScratch {
            iovs: (0..capacity).map(|_| empty_iovec()).collect(),
            hdrs: (0..capacity).map(|_| empty_header()).collect(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Starts an empty queue whose entries borrow their bytes for `'a`.
    pub fn queue<'a>(&'a mut self) -> SendQueue<'a> {
        SendQueue {
            scratch: self,
            len: 0,
            sent: 0,
            borrowed: PhantomData,
        }
    }
}

/// Datagrams waiting to go out on one socket; entries are sent in order.
pub struct SendQueue<'a> {
    scratch: &'a mut SendScratch,
    len: usize,
    sent: usize,
    borrowed: PhantomData<&'a [u8]>,
}

impl<'a> SendQueue<'a> {
    /// Queues `bytes` for `dest` (`None` on a connected socket). False when the queue is full.
    pub fn push(&mut self, bytes: &'a [u8], dest: Option<&'a SockAddr>) -> bool {
        let Some(hdr) = self.scratch.hdrs.get_mut(self.len) else {
            return false;
        };
        let iov = &mut self.scratch.iovs[self.len]; // same length as hdrs (see SendScratch::new)
        iov.iov_base = bytes.as_ptr().cast_mut().cast();
        iov.iov_len = bytes.len();
        *hdr = empty_header();
        if let Some(dest) = dest {
            hdr.msg_hdr.msg_name = dest.as_ptr().cast_mut().cast();
            hdr.msg_hdr.msg_namelen = dest.len();
        }
        hdr.msg_hdr.msg_iov = ptr::from_mut(iov);
        hdr.msg_hdr.msg_iovlen = 1;
        self.len += 1;
        true
    }

    /// Datagrams queued and not yet sent or skipped.
    pub fn pending(&self) -> usize {
        self.len - self.sent
    }

    /// Index (in push order) of the next datagram to go out.
    pub fn next_index(&self) -> usize {
        self.sent
    }

    pub fn is_full(&self) -> bool {
        self.len == self.scratch.hdrs.len()
    }

    /// One system call for the pending datagrams. `Ok(n)`: the next `n` left. An error concerns
    /// the next datagram, which stays pending: call [`SendQueue::skip`] to give it up.
    pub fn send(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        if self.pending() == 0 {
            return Ok(0);
        }
        let n = send_many(
            socket.as_raw_fd(),
            &mut self.scratch.hdrs[self.sent..self.len],
        )?;
        self.sent += n;
        Ok(n)
    }

    /// Gives up the next pending datagram (after an error that concerns it).
    pub fn skip(&mut self) {
        self.sent = (self.sent + 1).min(self.len);
    }

    /// Forgets every entry, sent or not.
    pub fn clear(&mut self) {
        self.len = 0;
        self.sent = 0;
    }
}

/// What [`flush`] did with a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub sent: usize,
    /// Datagrams given up after an error other than `WouldBlock`.
    pub failed: usize,
    /// The socket buffer was full: [`SendQueue::pending`] datagrams were left queued.
    pub blocked: bool,
}

/// Sends everything queued: retries partial sends, skips (and reports through `on_failed`, with
/// the datagram's push index) a datagram the kernel refuses, stops at `WouldBlock`.
pub fn flush(
    queue: &mut SendQueue<'_>,
    socket: &impl AsRawFd,
    mut on_failed: impl FnMut(usize, &io::Error),
) -> Flushed {
    let mut done = Flushed::default();
    while queue.pending() > 0 {
        match queue.send(socket) {
            Ok(n) => done.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                done.blocked = true;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                on_failed(queue.next_index(), &e);
                queue.skip();
                done.failed += 1;
            }
        }
    }
    done
}

#[cfg(target_os = "linux")]
fn recv_many(fd: RawFd, hdrs: &mut [MmsgHdr]) -> io::Result<usize> {
    let count = hdrs.len().min(libc::c_uint::MAX as usize) as libc::c_uint;
    // SAFETY: each header points at an iovec, a buffer and a sockaddr_storage that the caller
    // owns and keeps alive and unaliased for this call; `count` does not exceed `hdrs.len()`.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            count,
            libc::MSG_DONTWAIT,
            ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(target_os = "linux")]
fn send_many(fd: RawFd, hdrs: &mut [MmsgHdr]) -> io::Result<usize> {
    let count = hdrs.len().min(libc::c_uint::MAX as usize) as libc::c_uint;
    // SAFETY: each header points at an iovec and bytes (and optionally a destination address)
    // borrowed by the SendQueue for its whole life; `count` does not exceed `hdrs.len()`.
    let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), count, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(not(target_os = "linux"))]
fn recv_many(fd: RawFd, hdrs: &mut [MmsgHdr]) -> io::Result<usize> {
    for (i, hdr) in hdrs.iter_mut().enumerate() {
        // SAFETY: the header points at buffers the caller owns and keeps alive for this call.
        let n = unsafe { libc::recvmsg(fd, &mut hdr.msg_hdr, libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if i > 0 { Ok(i) } else { Err(e) };
        }
        hdr.msg_len = n as libc::c_uint;
    }
    Ok(hdrs.len())
}

#[cfg(not(target_os = "linux"))]
fn send_many(fd: RawFd, hdrs: &mut [MmsgHdr]) -> io::Result<usize> {
    for (i, hdr) in hdrs.iter_mut().enumerate() {
        // SAFETY: the header points at bytes borrowed by the SendQueue for its whole life.
        let n = unsafe { libc::sendmsg(fd, &hdr.msg_hdr, libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if i > 0 { Ok(i) } else { Err(e) };
        }
        hdr.msg_len = n as libc::c_uint;
    }
    Ok(hdrs.len())
}

/// Reads an IPv4 or IPv6 address the kernel wrote into `storage`.
fn socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family is AF_INET and the kernel wrote a whole sockaddr_in, which fits
            // in (and is less strictly aligned than) sockaddr_storage.
            let sin = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for AF_INET6 and sockaddr_in6.
            let sin6 = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            let v6 = SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id);
            Some(SocketAddr::V6(v6))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn recv_all(batch: &mut RecvBatch, socket: &UdpSocket, want: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for _ in 0..1000 {
            if got.len() >= want {
                break;
            }
            match batch.recv(socket) {
                Ok(_) => got.extend(batch.datagrams().map(|d| d.bytes.to_vec())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
        got
    }

    #[test]
    fn a_batch_goes_out_and_comes_back_in_order_with_its_source() {
        let (a, b) = pair();
        let dest = SockAddr::from(b.local_addr().unwrap());
        let payloads: Vec<Vec<u8>> = (0..10).map(|i| format!("msg {i}").into_bytes()).collect();
        let mut scratch = SendScratch::new(16);
        let mut queue = scratch.queue();
        for p in &payloads {
            assert!(queue.push(p, Some(&dest)));
        }
        let done = flush(&mut queue, &a, |_, e| panic!("send: {e}"));
        assert_eq!(done.sent, 10);

        let mut batch = RecvBatch::new(4, 64);
        let got = recv_all(&mut batch, &b, 10);
        assert_eq!(got, payloads);
        let first = batch.datagrams().next().unwrap();
        assert_eq!(first.source, Some(a.local_addr().unwrap()));
    }

    #[test]
    fn an_oversized_datagram_is_marked_truncated() {
        let (a, b) = pair();
        a.send_to(&[7u8; 100], b.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new(2, 10);
        let mut seen = None;
        for _ in 0..1000 {
            if batch.recv(&b).is_ok() {
                seen = batch
                    .datagrams()
                    .next()
                    .map(|d| (d.truncated, d.bytes.len()));
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(seen, Some((true, 10)));
    }

    #[test]
    fn a_full_queue_refuses_more() {
        let mut scratch = SendScratch::new(2);
        let mut queue = scratch.queue();
        assert!(queue.push(b"a", None));
        assert!(queue.push(b"b", None));
        assert!(queue.is_full());
        assert!(!queue.push(b"c", None));
        assert_eq!(queue.pending(), 2);
    }

    #[test]
    fn receiving_more_appends_datagrams_from_another_socket() {
        let (a, b) = pair();
        let (c, d) = pair();
        a.send_to(b"to b", b.local_addr().unwrap()).unwrap();
        c.send_to(b"to d", d.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new(2, 16);
        for socket in [&b, &d] {
            for _ in 0..1000 {
                if batch.recv_more(socket).is_ok_and(|n| n > 0) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        let got: Vec<_> = batch
            .datagrams()
            .map(|g| (g.bytes.to_vec(), g.source))
            .collect();
        let sources = [a.local_addr().ok(), c.local_addr().ok()];
        assert_eq!(
            got,
            [
                (b"to b".to_vec(), sources[0]),
                (b"to d".to_vec(), sources[1])
            ]
        );
        assert!(batch.is_full());
        assert_eq!(batch.recv_more(&b).unwrap(), 0);
        batch.clear();
        assert!(batch.is_empty());
    }

    #[test]
    fn nothing_waiting_is_would_block() {
        let (_a, b) = pair();
        let mut batch = RecvBatch::new(2, 10);
        let err = batch.recv(&b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(batch.datagrams().count(), 0);
    }
}

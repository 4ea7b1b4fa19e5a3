//! Linux: `recvmmsg` / `sendmmsg` batches, `SO_TIMESTAMPNS` arrival times and `SO_RXQ_OVFL`
//! kernel drop counts read from control messages, and ICMP unreachable errors read from the
//! socket's error queue (`IP_RECVERR`, `MSG_ERRQUEUE`).
//!
//! Every buffer the kernel reads or writes is allocated once in `new`; a batch call only
//! resets lengths and points the headers at the slots. The header arrays hold raw pointers
//! into the batch's own boxed slices, which never move, so the batch may move freely (it is
//! deliberately not `Send`: build it on the thread that uses it).

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::ptr;

use libc::{c_int, c_uint, c_void, socklen_t};
use mio::net::UdpSocket;

use super::{DATAGRAM_SLOT, Datagram, Outgoing};

/// Room for one `SO_RXQ_OVFL` (u32) and one `SCM_TIMESTAMPNS` (timespec) control message.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; 64]);

/// Slots for up to `capacity` datagrams received by one `recvmmsg` call.
pub(crate) struct RecvBatch {
    data: Box<[u8]>,
    names: Box<[libc::sockaddr_storage]>,
    controls: Box<[Control]>,
    iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
    arrivals: Box<[Option<u64>]>,
    received: usize,
    kernel_drops: Option<u32>,
}

impl RecvBatch {
    /// Allocates `capacity` slots of [`DATAGRAM_SLOT`] bytes (at least one).
    pub(crate) fn new(capacity: usize) -> RecvBatch {
        let capacity = capacity.max(1);
        let mut batch = RecvBatch {
            data: vec![0u8; capacity * DATAGRAM_SLOT].into_boxed_slice(),
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            names: vec![unsafe { mem::zeroed() }; capacity].into_boxed_slice(),
            controls: vec![Control([0; 64]); capacity].into_boxed_slice(),
            iovecs: vec![empty_iovec(); capacity].into_boxed_slice(),
            // SAFETY: mmsghdr is plain old data; all-zero (null pointers, zero lengths) is valid.
            headers: vec![unsafe { mem::zeroed() }; capacity].into_boxed_slice(),
            arrivals: vec![None; capacity].into_boxed_slice(),
            received: 0,
            kernel_drops: None,
        };
        batch.link();
        batch
    }

    /// Points every header at its slot's name, iovec and control buffer.
    fn link(&mut self) {
        let data = self.data.as_mut_ptr();
        for i in 0..self.headers.len() {
            self.iovecs[i] = libc::iovec {
                // The slot lies inside `data`: i < capacity and data holds capacity slots.
                iov_base: data.wrapping_add(i * DATAGRAM_SLOT).cast::<c_void>(),
                iov_len: DATAGRAM_SLOT,
            };
            let hdr = &mut self.headers[i].msg_hdr;
            hdr.msg_name = ptr::from_mut(&mut self.names[i]).cast::<c_void>();
            hdr.msg_iov = ptr::from_mut(&mut self.iovecs[i]);
            hdr.msg_iovlen = 1;
            hdr.msg_control = ptr::from_mut(&mut self.controls[i]).cast::<c_void>();
            reset(&mut self.headers[i]);
        }
    }

    /// Receives up to `capacity` datagrams without blocking; `WouldBlock` when none wait.
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        // The kernel writes the in-out lengths and flags back only for the datagrams it
        // returned (a failed receive writes nothing), so only the last call's `received`
        // entries need resetting; `new` set them all.
        for entry in self.headers.iter_mut().take(self.received) {
            reset(entry);
        }
        let count = self.headers.len() as c_uint;
        // SAFETY: `headers` holds `count` mmsghdrs whose names, iovecs and control buffers
        // point into boxed slices owned by `self` with the lengths set just above.
        let n = syscall!(recvmmsg(
            socket.as_raw_fd(),
            self.headers.as_mut_ptr(),
            count,
            libc::MSG_DONTWAIT,
            ptr::null_mut(),
        ))?;
        self.received = n as usize;
        self.read_controls();
        Ok(self.received)
    }

    /// Reads arrival times and the socket's cumulative drop count from the control messages.
    fn read_controls(&mut self) {
        self.kernel_drops = None;
        for i in 0..self.received {
            let (arrival, drops) = parse_controls(&self.headers[i].msg_hdr);
            self.arrivals[i] = arrival;
            if drops.is_some() {
                self.kernel_drops = drops;
            }
        }
    }

    /// The datagram in slot `i` of the last receive, or `None` past it or for an
    /// address family other than IPv4 / IPv6.
    pub(crate) fn datagram(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.received {
            return None;
        }
        let entry = &self.headers[i];
        let source = socket_addr(&self.names[i], entry.msg_hdr.msg_namelen)?;
        let len = (entry.msg_len as usize).min(DATAGRAM_SLOT);
        let start = i * DATAGRAM_SLOT;
        Some(Datagram {
            data: &self.data[start..start + len],
            source,
            arrival_ns: self.arrivals[i],
            truncated: entry.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        })
    }

    /// The socket's cumulative kernel receive-queue drops, as last reported (`SO_RXQ_OVFL`).
    pub(crate) fn kernel_drops(&self) -> Option<u32> {
        self.kernel_drops
    }
}

/// Restores the lengths a receive may have changed in `entry` to the full buffers.
fn reset(entry: &mut libc::mmsghdr) {
    entry.msg_len = 0;
    entry.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as socklen_t;
    entry.msg_hdr.msg_controllen = mem::size_of::<Control>() as _;
    entry.msg_hdr.msg_flags = 0;
}

fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: ptr::null_mut(),
        iov_len: 0,
    }
}

/// Walks one message's control buffer for `SCM_TIMESTAMPNS` and `SO_RXQ_OVFL`.
fn parse_controls(hdr: &libc::msghdr) -> (Option<u64>, Option<u32>) {
    let (mut arrival, mut drops) = (None, None);
    // SAFETY: `hdr` was filled by recvmmsg: msg_control/msg_controllen describe our own
    // control buffer, and the CMSG_* helpers stay within msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: a non-null cmsg from CMSG_FIRSTHDR / CMSG_NXTHDR points at a complete header.
        let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
        // SAFETY: as above; CMSG_DATA points at the payload the kernel wrote for this type.
        let payload = unsafe { libc::CMSG_DATA(cmsg) };
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS payload is one timespec; read_unaligned needs no alignment.
            let ts = unsafe { ptr::read_unaligned(payload.cast::<libc::timespec>()) };
            arrival = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
        } else if level == libc::SOL_SOCKET && kind == libc::SO_RXQ_OVFL {
            // SAFETY: an SO_RXQ_OVFL payload is one u32.
            drops = Some(unsafe { ptr::read_unaligned(payload.cast::<u32>()) });
        }
        // SAFETY: `cmsg` is a valid header inside `hdr`'s control buffer.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    (arrival, drops)
}

/// Scratch headers for one `sendmmsg` call of up to `capacity` datagrams.
pub(crate) struct SendScratch {
    names: Box<[libc::sockaddr_storage]>,
    name_lens: Box<[socklen_t]>,
    iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
}

impl SendScratch {
    pub(crate) fn new(capacity: usize) -> SendScratch {
        let capacity = capacity.max(1);
        SendScratch {
            // SAFETY: plain old data; all-zero is a valid value.
            names: vec![unsafe { mem::zeroed() }; capacity].into_boxed_slice(),
            name_lens: vec![0; capacity].into_boxed_slice(),
            iovecs: vec![empty_iovec(); capacity].into_boxed_slice(),
            // SAFETY: plain old data; all-zero (null pointers, zero lengths) is valid.
            headers: vec![unsafe { mem::zeroed() }; capacity].into_boxed_slice(),
        }
    }

    /// Fills the headers for `queue`, whose bytes are in `buffers` at `slot * slot_size`.
    fn prepare(&mut self, buffers: &[u8], slot_size: usize, queue: &[Outgoing]) {
        for (i, out) in queue.iter().enumerate() {
            self.name_lens[i] = write_socket_addr(out.destination, &mut self.names[i]);
            let start = (out.slot * slot_size).min(buffers.len());
            let len = out.len.min(buffers.len() - start);
            self.iovecs[i] = libc::iovec {
                // sendmmsg only reads through this pointer.
                iov_base: buffers[start..].as_ptr().cast_mut().cast::<c_void>(),
                iov_len: len,
            };
            let hdr = &mut self.headers[i].msg_hdr;
            hdr.msg_name = ptr::from_mut(&mut self.names[i]).cast::<c_void>();
            hdr.msg_namelen = self.name_lens[i];
            hdr.msg_iov = ptr::from_mut(&mut self.iovecs[i]);
            hdr.msg_iovlen = 1;
            hdr.msg_control = ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
        }
    }
}

/// Sends every datagram of `queue` (at most the scratch's capacity) from `socket`, setting
/// each one's `sent`. A datagram the kernel refuses is skipped and the rest still go out.
///
/// Returns how many ICMP errors left by earlier sends were reported on the way: where the
/// kernel reports one (e.g. `ECONNREFUSED` after a port unreachable) it does so on the next
/// call and sends nothing, so the datagram is retried once.
pub(crate) fn send_batch(
    socket: &UdpSocket,
    buffers: &[u8],
    slot_size: usize,
    queue: &mut [Outgoing],
    scratch: &mut SendScratch,
) -> usize {
    let n = queue.len().min(scratch.headers.len());
    scratch.prepare(buffers, slot_size, &queue[..n]);
    let (mut start, mut stale, mut retried, mut interrupts) = (0, 0, false, 0);
    while start < n {
        // SAFETY: headers[start..n] were prepared above and point at scratch's own names and
        // iovecs, whose bases lie inside `buffers`, borrowed for this whole call.
        let result = syscall!(sendmmsg(
            socket.as_raw_fd(),
            scratch.headers[start..n].as_mut_ptr(),
            (n - start) as c_uint,
            0,
        ));
        match result {
            Ok(sent) => {
                let sent = (sent as usize).clamp(1, n - start);
                queue[start..start + sent]
                    .iter_mut()
                    .for_each(|o| o.sent = true);
                start += sent;
                retried = false;
            }
            Err(e) if super::is_icmp_report(&e) && !retried => {
                stale += 1;
                retried = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted && interrupts < 8 => interrupts += 1,
            Err(_) => {
                queue[start].sent = false;
                start += 1;
                retried = false;
            }
        }
    }
    stale
}

/// Turns on arrival timestamps and kernel drop counts for a receiving socket.
pub(crate) fn tune_socket(socket: &impl AsRawFd) -> io::Result<()> {
    set_flag(socket, libc::SO_TIMESTAMPNS)?;
    set_flag(socket, libc::SO_RXQ_OVFL)
}

/// Asks the kernel to queue the ICMP errors our datagrams cause on the socket's error queue
/// (ip(7) `IP_RECVERR`, ipv6(7) `IPV6_RECVERR`): without it Linux drops them for an
/// unconnected socket. The socket then reports `EPOLLERR` while errors wait, and the next
/// send or receive returns the first one once (the callers count and retry it).
pub(crate) fn report_unreachable(socket: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
    let (level, name) = match ipv6 {
        false => (libc::SOL_IP, libc::IP_RECVERR),
        true => (libc::SOL_IPV6, libc::IPV6_RECVERR),
    };
    set_int_at(socket, level, name, 1)
}

/// Errors read from the error queue in one call at most, so a flood of ICMP cannot hold a
/// worker; for what is left the kernel sets the socket error again, so the next receive
/// reports it and the worker reads on.
const ERRORS_PER_TURN: usize = 64;

/// Room for one `IP_RECVERR` control message: a `sock_extended_err` and the offender's
/// address.
#[repr(C, align(8))]
struct ErrControl([u8; 128]);

/// Reads the socket's error queue without blocking (`recvmsg(MSG_ERRQUEUE | MSG_DONTWAIT)`,
/// at most [`ERRORS_PER_TURN`] entries) and hands `unreachable` the original destination of
/// each datagram an ICMP destination unreachable came back for. Other errors (local ones,
/// packet too big, time exceeded) are read and ignored, so the queue never fills the
/// socket's receive buffer. Returns how many entries were read.
pub(crate) fn read_unreachable(
    socket: &impl AsRawFd,
    mut unreachable: impl FnMut(SocketAddr),
) -> usize {
    // SAFETY: plain old data; all-zero is a valid value.
    let mut name: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut control = ErrControl([0; 128]);
    for read in 0..ERRORS_PER_TURN {
        // SAFETY: plain old data; all-zero (null pointers, zero lengths) is valid.
        let mut hdr: libc::msghdr = unsafe { mem::zeroed() };
        hdr.msg_name = ptr::from_mut(&mut name).cast::<c_void>();
        hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as socklen_t;
        // No iovec: the original datagram is not needed, the kernel truncates it.
        hdr.msg_control = ptr::from_mut(&mut control).cast::<c_void>();
        hdr.msg_controllen = mem::size_of::<ErrControl>() as _;
        // SAFETY: `hdr` points at `name` and `control`, live locals of the sizes given.
        let result = syscall!(recvmsg(
            socket.as_raw_fd(),
            &mut hdr,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        ));
        if result.is_err() {
            // EAGAIN: the queue is empty (anything else: nothing more to read now).
            return read;
        }
        if parse_error(&hdr).is_some_and(|e| is_unreachable(e.ee_origin, e.ee_type, e.ee_code))
            && let Some(destination) = socket_addr(&name, hdr.msg_namelen)
        {
            unreachable(destination);
        }
    }
    ERRORS_PER_TURN
}

/// The extended error in an error-queue message's control buffer, if any.
fn parse_error(hdr: &libc::msghdr) -> Option<libc::sock_extended_err> {
    // SAFETY: `hdr` was filled by recvmsg: msg_control/msg_controllen describe our own
    // control buffer, and the CMSG_* helpers stay within msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: a non-null cmsg from CMSG_FIRSTHDR / CMSG_NXTHDR points at a complete header.
        let (level, kind, len) =
            unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
        let ours = (level == libc::SOL_IP && kind == libc::IP_RECVERR)
            || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR);
        // SAFETY: CMSG_LEN is arithmetic on a constant size.
        let needed = unsafe { libc::CMSG_LEN(mem::size_of::<libc::sock_extended_err>() as u32) };
        if ours && len >= needed as usize {
            // SAFETY: the payload of an IP_RECVERR / IPV6_RECVERR message starts with a
            // sock_extended_err (checked long enough above); read_unaligned needs no alignment.
            let payload = unsafe { libc::CMSG_DATA(cmsg) };
            return Some(unsafe { ptr::read_unaligned(payload.cast::<libc::sock_extended_err>()) });
        }
        // SAFETY: `cmsg` is a valid header inside `hdr`'s control buffer.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    None
}

/// Whether an extended error is an ICMP destination unreachable that says the destination
/// cannot be reached. RFC 792 / RFC 1812 §5.2.7.1: ICMP type 3, every code but 4
/// (fragmentation needed: path MTU discovery, RFC 1191, not a dead host). RFC 4443 §3.1:
/// ICMPv6 type 1, every code. Packet too big, time exceeded and local errors are not.
fn is_unreachable(origin: u8, kind: u8, code: u8) -> bool {
    match origin {
        libc::SO_EE_ORIGIN_ICMP => kind == 3 && code != 4,
        libc::SO_EE_ORIGIN_ICMP6 => kind == 1,
        _ => false,
    }
}

/// Raises the receive buffer past `rmem_max` where the process may (`CAP_NET_ADMIN`).
pub(crate) fn force_recv_buffer(socket: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    set_int(
        socket,
        libc::SO_RCVBUFFORCE,
        c_int::try_from(bytes).unwrap_or(c_int::MAX),
    )
}

/// Raises the send buffer past `wmem_max` where the process may (`CAP_NET_ADMIN`).
pub(crate) fn force_send_buffer(socket: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    set_int(
        socket,
        libc::SO_SNDBUFFORCE,
        c_int::try_from(bytes).unwrap_or(c_int::MAX),
    )
}

fn set_flag(socket: &impl AsRawFd, name: c_int) -> io::Result<()> {
    set_int(socket, name, 1)
}

fn set_int(socket: &impl AsRawFd, name: c_int, value: c_int) -> io::Result<()> {
    set_int_at(socket, libc::SOL_SOCKET, name, value)
}

fn set_int_at(socket: &impl AsRawFd, level: c_int, name: c_int, value: c_int) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and we pass its exact size.
    syscall!(setsockopt(
        socket.as_raw_fd(),
        level,
        name,
        ptr::from_ref(&value).cast::<c_void>(),
        mem::size_of::<c_int>() as socklen_t,
    ))
    .map(drop)
}

/// Reads an IPv4 / IPv6 address the kernel wrote into `storage`.
fn socket_addr(storage: &libc::sockaddr_storage, len: socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match c_int::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family is AF_INET and the kernel wrote a whole sockaddr_in;
            // sockaddr_storage is aligned for every sockaddr type.
            let sin = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for AF_INET6 and sockaddr_in6.
            let sin6 = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id).into())
        }
        _ => None,
    }
}

/// Writes `addr` into `storage` and returns the length to pass to the kernel.
fn write_socket_addr(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr type.
            let sin = unsafe { &mut *ptr::from_mut(storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            };
            sin.sin_zero = [0; 8];
            mem::size_of::<libc::sockaddr_in>() as socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *ptr::from_mut(storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            sin6.sin6_scope_id = v6.scope_id();
            mem::size_of::<libc::sockaddr_in6>() as socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addrs_round_trip_through_storage() {
        // SAFETY: plain old data; all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        for text in ["127.0.0.1:5060", "[::1]:5080", "[2001:db8::7]:1"] {
            let addr: SocketAddr = text.parse().unwrap();
            let len = write_socket_addr(addr, &mut storage);
            assert_eq!(socket_addr(&storage, len), Some(addr));
        }
        assert_eq!(socket_addr(&storage, 0), None);
    }

    /// A socket with a tiny receive buffer, tuned, and a sender to overflow it.
    fn overflowed_socket() -> (UdpSocket, SocketAddr) {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        tune_socket(&socket).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        socket.set_nonblocking(true).unwrap();
        let socket = UdpSocket::from_std(socket.into());
        let addr = socket.local_addr().unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..64 {
            sender.send_to(&[7u8; 1000], addr).unwrap();
        }
        (socket, sender.local_addr().unwrap())
    }

    #[test]
    fn a_batch_reports_sources_arrival_times_and_kernel_drops() {
        let (socket, sender) = overflowed_socket();
        let mut batch = RecvBatch::new(8);
        let n = batch.recv(&socket).unwrap();
        assert!(n >= 1);
        let first = batch.datagram(0).unwrap();
        assert_eq!((first.data.len(), first.source), (1000, sender));
        assert!(!first.truncated);
        assert!(first.arrival_ns.is_some_and(|ns| ns > 0));
        assert!(batch.datagram(n).is_none());
        while batch.recv(&socket).is_ok() {}
        // The kernel stamps its drop count on datagrams queued after the drops.
        let late = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        late.send_to(b"late", socket.local_addr().unwrap()).unwrap();
        assert_eq!(batch.recv(&socket).unwrap(), 1);
        assert!(
            batch.kernel_drops().is_some_and(|d| d > 0),
            "64 KiB into a 4 KiB buffer"
        );
    }

    #[test]
    fn only_destination_unreachable_counts() {
        assert!(
            is_unreachable(libc::SO_EE_ORIGIN_ICMP, 3, 3),
            "port unreachable"
        );
        assert!(
            is_unreachable(libc::SO_EE_ORIGIN_ICMP, 3, 1),
            "host unreachable"
        );
        assert!(
            !is_unreachable(libc::SO_EE_ORIGIN_ICMP, 3, 4),
            "fragmentation needed"
        );
        assert!(
            !is_unreachable(libc::SO_EE_ORIGIN_ICMP, 11, 0),
            "time exceeded"
        );
        assert!(
            is_unreachable(libc::SO_EE_ORIGIN_ICMP6, 1, 4),
            "v6 port unreachable"
        );
        assert!(
            !is_unreachable(libc::SO_EE_ORIGIN_ICMP6, 2, 0),
            "packet too big"
        );
        assert!(
            !is_unreachable(libc::SO_EE_ORIGIN_LOCAL, 3, 3),
            "a local error"
        );
    }

    #[test]
    fn a_closed_port_comes_back_as_its_address() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        report_unreachable(&socket, false).unwrap();
        socket.set_nonblocking(true).unwrap();
        socket.send_to(b"hello", dead).unwrap();
        // The ICMP error is queued by the loopback path; wait a bounded while for it.
        let mut seen = Vec::new();
        for _ in 0..200 {
            read_unreachable(&socket, |a| seen.push(a));
            if !seen.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(seen, [dead]);
        assert_eq!(read_unreachable(&socket, |_| panic!("read twice")), 0);
    }

    #[test]
    fn a_batch_is_sent_whole_and_refusals_are_marked() {
        let (socket, _) = overflowed_socket();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let buffers = b"aaaabbbbcccc";
        let broadcast = SocketAddr::from(([255, 255, 255, 255], 9));
        let mut queue = [peer_addr, broadcast, peer_addr].map(|destination| Outgoing {
            slot: 0,
            len: 4,
            destination,
            sent: false,
        });
        queue[2].slot = 2;
        let stale = send_batch(&socket, buffers, 4, &mut queue, &mut SendScratch::new(4));
        assert_eq!(stale, 0);
        assert_eq!(queue.map(|o| o.sent), [true, false, true]);
        let mut buf = [0u8; 16];
        assert_eq!(peer.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"aaaa");
        assert_eq!(peer.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"cccc");
    }
}

//! The operating-system edge of the runtime: every `unsafe` system call lives below here.
//!
//! Each backend offers the same small API:
//! - [`RecvBatch`]: preallocated slots that one call fills with up to `slots` datagrams
//!   (`recvmmsg` on Linux, a `recv_from` loop elsewhere), with each datagram's source, kernel
//!   arrival time when the OS gives it, and the socket's cumulative kernel drop count.
//! - [`send_batch`]: sends a list of prepared datagrams from one socket (`sendmmsg` on Linux,
//!   a `send_to` loop elsewhere), marking which ones the kernel accepted. A failed send never
//!   stops the rest of the batch; an ICMP error reported for an earlier send is counted and
//!   the datagram it displaced is retried once.
//! - [`tune_socket`]: the socket options that make arrival times and kernel drops visible.
//! - [`raise_open_files`]: room for the configured number of TCP connections.
//!
//! Contract shared with mio: a receive call returns `WouldBlock` once the socket is drained.

// `ferrovia_portable` is a test switch set through RUSTFLAGS, not a Cargo feature.
#![allow(unexpected_cfgs)]
// The one place the crate-wide `unsafe_code = "deny"` lint is lifted.
#![allow(unsafe_code)]

use std::net::SocketAddr;

/// Calls a libc function and turns its `-1` into `io::Error::last_os_error()`.
///
/// The call itself is `unsafe`; every use carries a `// SAFETY:` line saying why its
/// arguments are valid.
#[allow(unused_macros)]
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

// `RUSTFLAGS="--cfg ferrovia_portable"` selects the portable backend on Linux too, so that
// path can be tested where CI runs.
#[cfg(all(target_os = "linux", not(ferrovia_portable)))]
mod linux;
#[cfg(all(target_os = "linux", not(ferrovia_portable)))]
pub(crate) use linux::{
    RecvBatch, SendScratch, force_recv_buffer, force_send_buffer, read_unreachable,
    report_unreachable, send_batch, tune_socket,
};

#[cfg(any(not(target_os = "linux"), ferrovia_portable))]
mod portable;
#[cfg(any(not(target_os = "linux"), ferrovia_portable))]
pub(crate) use portable::{
    RecvBatch, SendScratch, force_recv_buffer, force_send_buffer, read_unreachable,
    report_unreachable, send_batch, tune_socket,
};

#[cfg(unix)]
mod interfaces;
#[cfg(unix)]
pub(crate) use interfaces::interface_addrs;

#[cfg(unix)]
mod limits;
#[cfg(unix)]
pub(crate) use limits::raise_open_files;

/// The largest UDP payload (IPv6 without jumbograms; IPv4's is smaller) rounded up.
pub(crate) const DATAGRAM_SLOT: usize = 65_536;

/// One received datagram, borrowed from its slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Datagram<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) source: SocketAddr,
    /// Kernel receive time, nanoseconds since the Unix epoch (`SO_TIMESTAMPNS`), if known.
    pub(crate) arrival_ns: Option<u64>,
    /// The datagram was larger than the slot and was cut.
    pub(crate) truncated: bool,
}

/// One datagram waiting to be sent: `len` bytes of output slot `slot` to `destination`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outgoing {
    pub(crate) slot: usize,
    pub(crate) len: usize,
    pub(crate) destination: SocketAddr,
    /// Set by [`send_batch`]: the kernel accepted the datagram.
    pub(crate) sent: bool,
}

/// An error that reports an ICMP message for an earlier datagram rather than a failure of
/// this call. Linux reports these on unconnected sockets only with `IP_RECVERR` (which the
/// UDP listeners set, to read the errors back from the error queue); other systems may too.
pub(crate) fn is_icmp_report(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::HostUnreachable
            | std::io::ErrorKind::NetworkUnreachable
    )
}

/// Nanoseconds since the Unix epoch, the clock `SO_TIMESTAMPNS` uses.
pub(crate) fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

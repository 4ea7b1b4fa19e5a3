//! A caller and a callee on loopback passing one request and its answer through a proxy,
//! again and again with the same bytes: what the allocation tests measure. Everything the
//! loop touches is built while warming up, so the test thread allocates nothing in it.

use std::net::{SocketAddr, UdpSocket};

use super::sip::{response, top_via_sent_by};
use super::{peer, recv_text};

pub struct RoundTrips {
    pub caller: UdpSocket,
    pub callee: UdpSocket,
    proxy: SocketAddr,
    request: Vec<u8>,
    answer: Vec<u8>,
    /// Where the callee sends its answer: the proxy's Via on the forwarded request.
    via: SocketAddr,
    buf: Vec<u8>,
}

impl RoundTrips {
    /// Sends `request(caller, callee)` through the proxy at `proxy` once and answers it 200
    /// back, keeping the bytes of both: a stateless proxy rewrites the same request into
    /// the same bytes every time.
    pub fn warm(
        proxy: SocketAddr,
        request: impl FnOnce(SocketAddr, SocketAddr) -> Vec<u8>,
    ) -> RoundTrips {
        let (caller, callee) = (peer(), peer());
        let request = request(caller.local_addr().unwrap(), callee.local_addr().unwrap());
        RoundTrips::warm_with(proxy, caller, callee, request)
    }

    /// The same with sockets the test made already (when the request, or a server the
    /// proxy asks, had to name their addresses first).
    pub fn warm_with(
        proxy: SocketAddr,
        caller: UdpSocket,
        callee: UdpSocket,
        request: Vec<u8>,
    ) -> RoundTrips {
        caller.send_to(&request, proxy).unwrap();
        let (forwarded, _) = recv_text(&callee);
        let answer = response(&forwarded, 200, "OK").into_bytes();
        let via = top_via_sent_by(&forwarded).unwrap();
        callee.send_to(&answer, via).unwrap();
        recv_text(&caller);
        RoundTrips {
            caller,
            callee,
            proxy,
            request,
            answer,
            via,
            buf: vec![0u8; 65_536],
        }
    }

    /// The request the caller sends.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// `n` round trips; after sending each request the caller also runs `alongside` (with
    /// itself and the proxy's address), e.g. to send something the proxy drops.
    pub fn run(&mut self, n: usize, mut alongside: impl FnMut(&UdpSocket, SocketAddr)) {
        for _ in 0..n {
            self.caller.send_to(&self.request, self.proxy).unwrap();
            alongside(&self.caller, self.proxy);
            self.callee.recv_from(&mut self.buf).unwrap();
            self.callee.send_to(&self.answer, self.via).unwrap();
            self.caller.recv_from(&mut self.buf).unwrap();
        }
    }
}

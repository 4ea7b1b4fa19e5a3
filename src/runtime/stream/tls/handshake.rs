//! Driving rustls' unbuffered API through a handshake over the session's own buffers: the
//! records read so far go in (what rustls has consumed is cut from the front), the flights
//! it answers with are encoded behind what waits in the output. Allocation is allowed here
//! (once per connection); the traffic after it is sealed and opened by [`super::record`].

use rustls::Error;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, InsufficientSizeError, UnbufferedStatus,
};

use super::Handshake;

/// Where a handshake stands after the input there is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// More records are needed from the peer.
    NeedInput,
    /// Complete: the session may take over the records.
    Done,
    /// The peer closed (`close_notify`) before the end.
    PeerClosed,
}

/// What one state asks of the caller.
enum Act {
    Again,
    Blocked,
    Traffic,
    Closed,
}

/// Runs the handshake over `input[lo..hi]`, moving `lo` past what rustls consumed,
/// encoding its records into `output` and keeping plaintext it opened in `early`.
pub(super) fn advance(
    hs: &mut Handshake,
    input: &mut [u8],
    (lo, hi): (&mut usize, usize),
    output: &mut Vec<u8>,
    early: &mut Vec<u8>,
) -> Result<Step, Error> {
    // Each pass consumes input or output, or stops: bounded by what was read.
    loop {
        let incoming = &mut input[*lo..hi];
        let (discard, act) = match hs {
            Handshake::Server(c) => act(c.process_tls_records(incoming), output, early),
            Handshake::Client(c) => act(c.process_tls_records(incoming), output, early),
        };
        *lo += discard;
        match act? {
            Act::Again => {}
            Act::Blocked => return Ok(Step::NeedInput),
            // A TLS 1.3 server may send before the client's Finished; it is not done yet.
            Act::Traffic if hs.is_handshaking() => return Ok(Step::NeedInput),
            Act::Traffic => return Ok(Step::Done),
            Act::Closed => return Ok(Step::PeerClosed),
        }
    }
}

/// Acts on one state; how much input to cut from the front with it.
fn act<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    output: &mut Vec<u8>,
    early: &mut Vec<u8>,
) -> (usize, Result<Act, Error>) {
    let UnbufferedStatus { mut discard, state } = status;
    let act = match state {
        Err(e) => Err(e),
        Ok(ConnectionState::ReadTraffic(mut r)) => loop {
            match r.next_record() {
                None => break Ok(Act::Again),
                Some(Err(e)) => break Err(e),
                Some(Ok(record)) => {
                    discard += record.discard;
                    early.extend_from_slice(record.payload);
                }
            }
        },
        Ok(ConnectionState::EncodeTlsData(mut e)) => encode(&mut e, output).map(|_| Act::Again),
        Ok(ConnectionState::TransmitTlsData(t)) => {
            // The records are in the output; the connection writes them when it can.
            t.done();
            Ok(Act::Again)
        }
        Ok(ConnectionState::BlockedHandshake) => Ok(Act::Blocked),
        Ok(ConnectionState::WriteTraffic(_)) => Ok(Act::Traffic),
        Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => Ok(Act::Closed),
        // Early data is never enabled (max_early_data_size stays 0).
        Ok(_) => Err(Error::General("unexpected early data".into())),
    };
    (discard, act)
}

/// Encodes one handshake record behind what waits in `output`, growing it as needed.
fn encode<Data>(e: &mut EncodeTlsData<'_, Data>, output: &mut Vec<u8>) -> Result<(), Error> {
    let at = output.len();
    let mut room = 4096;
    loop {
        output.resize(at + room, 0);
        match e.encode(&mut output[at..]) {
            Ok(n) => {
                output.truncate(at + n);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size }))
                if required_size > room =>
            {
                room = required_size;
            }
            Err(e) => {
                output.truncate(at);
                return Err(Error::General(e.to_string()));
            }
        }
    }
}

/// After a failed handshake: the alert rustls queued for the peer, into `output`. `input`
/// is what is left of the input (rustls' contract: the same buffer, less what it consumed).
pub(super) fn queue_alert(hs: &mut Handshake, input: &mut [u8], output: &mut Vec<u8>) {
    // rustls hands queued records out before it reports the stored error again.
    for _ in 0..4 {
        let mut early = Vec::new();
        let (_, act) = match hs {
            Handshake::Server(c) => act(c.process_tls_records(input), output, &mut early),
            Handshake::Client(c) => act(c.process_tls_records(input), output, &mut early),
        };
        if !matches!(act, Ok(Act::Again)) {
            return;
        }
    }
}

impl Handshake {
    fn is_handshaking(&self) -> bool {
        match self {
            Handshake::Server(c) => c.is_handshaking(),
            Handshake::Client(c) => c.is_handshaking(),
        }
    }
}

//! ferrovia's perf/ tools, as a library the binaries and the tests share.
//!
//! - `ferrovia-relay` ([`relay`]): a bare UDP relay that forwards datagrams unchanged, the I/O
//!   floor every forwarder is compared against.
//! - `ferrovia-loadgen`: a reflector ([`reflector`]) that answers every request with a stateless
//!   200 OK, a load generator ([`sender`]) that offers a fixed rate over many flows and matches
//!   answers by sequence number, the zero-loss rate search ([`search`]), and the latency plot
//!   ([`plot`]); and closed-loop load over TCP, TLS, WS and WSS connections, with TLS
//!   handshakes full and resumed ([`stream`]); and the register floor ([`register_floor`]), a
//!   blocking one-socket responder with canned 401 and 200 answers for sipp's REGISTER-with-
//!   digest scenario, the least any registrar can spend on that workload.
//!
//! The SIP the tools speak, the pacing, the matching and the flow table are plain functions over
//! bytes and times ([`sip`], [`pacer`], [`tracker`], [`flow_table`]); only [`batch`] (batched
//! system calls) and [`stop`] (signal flag) hold `unsafe` code. Everything aims at loopback only.

pub mod batch;
pub mod flow_table;
pub mod hgrm;
pub mod net;
pub mod pacer;
pub mod plot;
pub mod reflector;
pub mod register_floor;
pub mod relay;
pub mod search;
pub mod sender;
pub mod sip;
pub mod stop;
pub mod stream;
pub mod tracker;

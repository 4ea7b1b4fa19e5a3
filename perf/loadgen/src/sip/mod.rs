//! The SIP the load tools speak: framing received datagrams ([`message`]), the reflector's
//! stateless 200 OK ([`reply`]), the register floor's canned 401 and 200 ([`register`]) and the load generator's numbered requests ([`request`]).
//!
//! Nothing here touches a socket or a clock, and nothing panics on what arrives from the
//! network: a datagram that cannot be used is a [`Malformed`] value the caller counts.

pub mod message;
pub mod register;
pub mod reply;
pub mod request;

pub use message::{Header, Malformed, Message, StartLine};
pub use register::{FloorAnswer, register_answer};
pub use reply::{Answer, answer};
pub use request::{CallRef, MAX_SEQ, Method, RequestSpec, RequestTemplate, RunId};

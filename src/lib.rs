//! ferrovia: a multi-core stateless SIP edge proxy.
//!
//! The protocol core is sans-IO: [`sip`] scans and parses messages, [`proxy`] decides and
//! rewrites. The I/O shell around them lives in the runtime.

pub mod contact;
pub mod proxy;
pub mod sip;

//! ferrovia: a multi-core stateless SIP edge proxy.
//!
//! The protocol core is sans-IO: [`sip`] scans and parses messages, [`proxy`] decides and
//! rewrites. The I/O shell around them is [`runtime`], measured by [`stats`]; [`service`]
//! runs both, and [`cli`] and [`settings`] say how an operator starts it. [`protect`] screens
//! each message before the core (access lists, bans, scanners, per-source rate limits).

pub mod cli;
pub mod contact;
pub mod dns;
pub mod groups;
pub mod media;
pub mod policy;
pub mod policy_tools;
pub mod protect;
pub mod proxy;
pub mod record;
pub mod registrar;
pub mod runtime;
pub mod service;
pub mod settings;
pub mod sip;
pub mod stats;
pub mod websocket;

//! SIP message scanning and field parsing: zero-copy, allocation-free, never panics on input.

#![forbid(unsafe_code)]

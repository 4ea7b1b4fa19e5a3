//! A process-wide stop flag raised by SIGINT / SIGTERM, so that every bounded loop can also end
//! early, print its counts and exit cleanly when the script that started it says so.
//!
//! The handler only stores into an atomic, which is async-signal-safe.
#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn raise_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the handler for SIGINT and SIGTERM and returns the flag it raises.
pub fn on_signals() -> io::Result<&'static AtomicBool> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is given a zeroed (valid) struct whose handler is an `extern "C"`
        // function that only touches an atomic; the old action is not asked for.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = raise_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(&STOP)
}

//! A process-wide stop flag raised by SIGINT / SIGTERM, so that every bounded loop can also end
//! early, print its counts and exit cleanly when the script that started it says so (or when
//! its own alarm rings).
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
///
/// The handler is installed without `SA_RESTART`, so a blocking receive is interrupted
/// (`EINTR`) and its loop sees the flag.
pub fn on_signals() -> io::Result<&'static AtomicBool> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        install(signal)?;
    }
    Ok(&STOP)
}

/// Raises the flag after `secs` seconds too (`SIGALRM`), so that a loop blocked in a receive
/// ends on time even when nothing arrives.
pub fn alarm_after(secs: u32) -> io::Result<&'static AtomicBool> {
    install(libc::SIGALRM)?;
    // SAFETY: alarm only schedules a SIGALRM for this process; its handler was installed above.
    unsafe { libc::alarm(secs.max(1)) };
    Ok(&STOP)
}

fn install(signal: libc::c_int) -> io::Result<()> {
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
    Ok(())
}

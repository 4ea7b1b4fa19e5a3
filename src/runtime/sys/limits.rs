//! The process's open-file limit (`RLIMIT_NOFILE`): every TCP connection is a descriptor.

use std::io;

/// Raises the soft open-file limit toward `wanted` (never above the hard limit, never
/// lowering it); returns the soft limit now in force.
// `rlim_t` is `u64` on Linux but not on every Unix.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn raise_open_files(wanted: u64) -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for getrlimit to fill.
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut limit))?;
    let target = (wanted as libc::rlim_t).min(limit.rlim_max);
    if target <= limit.rlim_cur {
        return Ok(limit.rlim_cur as u64);
    }
    limit.rlim_cur = target;
    // SAFETY: `limit` is a valid rlimit whose soft value does not exceed its hard value.
    syscall!(setrlimit(libc::RLIMIT_NOFILE, &limit))?;
    Ok(target as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_never_drops() {
        let now = raise_open_files(0).unwrap();
        assert!(now > 0);
        assert!(raise_open_files(now).unwrap() >= now);
    }
}

//! The registrar as the service runs it: built from `[registrar]` (the users file read, the
//! nonce keys made, the snapshot loaded), and a keeper thread that sweeps expired bindings
//! every second and writes the snapshot every `snapshot-interval` and at stop; and the
//! keepalive thread, which pings UDP bindings' flows from duplicates of the listeners'
//! sockets (never from a worker, never waiting: a send that would block is counted failed).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use log::{info, warn};

use crate::registrar::{Auth, Keepalives, Location, NonceKey, Nonces, Registrar, Users, snapshot};
use crate::runtime::UdpSender;
use crate::settings::RegistrarSettings;

/// How often expired bindings are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Builds the registrar, and the keepalive schedule when keepalives are on; a users file
/// that cannot be read or parsed is an error. With a shared store, `replicate` receives
/// every change.
pub(super) fn build(
    settings: &RegistrarSettings,
    replicate: Option<crossbeam_channel::Sender<crate::registrar::Changed>>,
) -> Result<(Arc<Registrar>, Option<Keepalives>), String> {
    let auth = match &settings.users {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("registrar.users: cannot read {}: {e}", path.display()))?;
            let users = Users::parse(&text, &settings.realm)
                .map_err(|e| format!("registrar.users: {}: {e}", path.display()))?;
            info!(
                "registrar: {} users in realm {}",
                users.len(),
                settings.realm
            );
            Some(Auth::new(
                settings.algorithms.clone(),
                users,
                nonces(settings),
                settings.match_from_user,
            ))
        }
    };
    let location = Arc::new(Location::new(settings.config.capacity));
    if let Some(path) = &settings.snapshot {
        match snapshot::load(&location, path, Instant::now()) {
            Ok(n) => info!("registrar: {n} bindings restored from {}", path.display()),
            Err(e) => warn!("registrar: cannot read {}: {e}", path.display()),
        }
    }
    let mut registrar = Registrar::new(settings.config.clone(), auth, location);
    for peer in &settings.peers {
        registrar.add_peer(*peer);
    }
    if let Some(writer) = replicate {
        registrar = registrar.with_replication(writer);
    }
    let mut schedule = None;
    if let Some(config) = &settings.keepalive {
        let (keepalives, answers) =
            Keepalives::new(config.clone(), crate::runtime::random_secret());
        registrar = registrar.with_keepalive(answers);
        schedule = Some(keepalives);
    }
    Ok((Arc::new(registrar), schedule))
}

fn nonces(settings: &RegistrarSettings) -> Nonces {
    let keys = if settings.nonce_keys.is_empty() {
        let mut secret = [0u8; 32];
        secret[..16].copy_from_slice(&crate::runtime::random_secret());
        secret[16..].copy_from_slice(&crate::runtime::random_secret());
        vec![NonceKey { id: 0, secret }]
    } else {
        settings.nonce_keys.clone()
    };
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // `keys` is never empty here, so `new` returns a table.
    Nonces::new(keys, settings.nonce_lifetime, Instant::now(), unix).expect("at least one key")
}

/// Sweeps the location table and writes its snapshot, off the workers' path.
pub(super) struct Keeper {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Keeper {
    pub(super) fn start(
        location: Arc<Location>,
        snapshot: Option<(PathBuf, Duration)>,
    ) -> io::Result<Keeper> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ferrovia-location".into())
            .spawn(move || {
                let mut saved = Instant::now();
                while !flag.load(Ordering::Acquire) {
                    std::thread::park_timeout(SWEEP_INTERVAL);
                    let now = Instant::now();
                    location.sweep(now);
                    if let Some((path, every)) = &snapshot
                        && now.duration_since(saved) >= *every
                    {
                        save(&location, path);
                        saved = now;
                    }
                }
                if let Some((path, _)) = &snapshot {
                    save(&location, path);
                }
            })?;
        Ok(Keeper { stop, thread })
    }

    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

fn save(location: &Location, path: &std::path::Path) {
    if let Err(e) = snapshot::save(location, path, Instant::now()) {
        warn!("registrar: cannot write {}: {e}", path.display());
    }
}

/// How often the keepalive schedule runs (each flow has a one-second slot in the interval).
const KEEPALIVE_TICK: Duration = Duration::from_secs(1);

/// Pings UDP bindings' flows (see `registrar::Keepalives`) from the listeners' sockets.
pub(super) struct KeepaliveThread {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl KeepaliveThread {
    pub(super) fn start(
        registrar: Arc<Registrar>,
        mut schedule: Keepalives,
        senders: Vec<UdpSender>,
    ) -> io::Result<KeepaliveThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ferrovia-keepalive".into())
            .spawn(move || {
                let origin = |local: std::net::SocketAddr| {
                    sender_for(&senders, local).map(|s| s.shown.clone())
                };
                let mut next = Instant::now() + KEEPALIVE_TICK;
                while !flag.load(Ordering::Acquire) {
                    std::thread::park_timeout(next.saturating_duration_since(Instant::now()));
                    let now = Instant::now();
                    if now < next {
                        continue;
                    }
                    next += KEEPALIVE_TICK;
                    schedule.tick(&registrar, now, &origin, &mut |bytes, local, to| {
                        sender_for(&senders, local)
                            .is_some_and(|s| s.socket.send_to(bytes, to).is_ok())
                    });
                }
            })?;
        Ok(KeepaliveThread { stop, thread })
    }

    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// The listener a flow came to; on a wildcard listener (or an unknown one) the first of the
/// same address family, as the workers choose for a location-routed request.
fn sender_for(senders: &[UdpSender], local: std::net::SocketAddr) -> Option<&UdpSender> {
    senders.iter().find(|s| s.local == local).or_else(|| {
        senders
            .iter()
            .find(|s| s.local.is_ipv4() == local.is_ipv4())
    })
}

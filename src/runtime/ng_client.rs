//! The NG client of the media relay (rtpengine): the side service of kind `SideKind::Media`.
//! It lives with the runtime (it is I/O); the protocol, the settings and the counters it uses
//! are `crate::media`'s.
//!
//! Two threads share one UDP socket. The service's own thread takes questions, chooses an
//! instance (a hash of the Call-ID; a new call whose instance is down goes to the next one
//! that is up, and its later commands follow it), sends the command with a fresh cookie and
//! keeps it pending; on every tick it sends again what is due (at most `retries` times within
//! `timeout`), gives up on what is past its deadline (answered `Failed`, counted, the
//! instance marked down) and pings every instance each `ping_interval`. The reader thread
//! receives replies, matches each to its pending command by cookie and answers the parked
//! message through the `Replier`, in whatever order the replies come. A reply that does not
//! parse is counted and otherwise ignored. Nothing here waits without a bound: the reader
//! wakes every `TICK` to see whether the service is stopping.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::side::{Asker, Question, Questions, Replier, SideService};
use crate::media::Media;
use crate::media::NgOutcome as Outcome;
use crate::media::ng::{self, Command, Extras, MediaAnswer, MediaQuery, Reply};
use crate::proxy::{Answer, Query};

/// How often the service looks at its pending commands and pings.
const TICK: Duration = Duration::from_millis(10);

/// The largest reply read (an SDP with many streams stays far below).
const MAX_REPLY: usize = 65_535;

/// See the module docs.
pub struct NgClient {
    media: Arc<Media>,
    socket: UdpSocket,
}

impl NgClient {
    /// A client with its own socket on an ephemeral loopback or wildcard port (the family of
    /// the first instance).
    pub fn new(media: Arc<Media>) -> std::io::Result<NgClient> {
        let bind: SocketAddr = match media.config.rtpengine.first() {
            Some(SocketAddr::V6(a)) if a.ip().is_loopback() => "[::1]:0".parse(),
            Some(SocketAddr::V6(_)) => "[::]:0".parse(),
            Some(SocketAddr::V4(a)) if a.ip().is_loopback() => "127.0.0.1:0".parse(),
            _ => "0.0.0.0:0".parse(),
        }
        .map_err(std::io::Error::other)?;
        let socket = UdpSocket::bind(bind)?;
        socket.set_read_timeout(Some(TICK * 5))?;
        Ok(NgClient { media, socket })
    }
}

/// A command sent and not answered yet.
struct Pending {
    asker: Option<Asker>,
    command: Command,
    datagram: Vec<u8>,
    instance: usize,
    first_sent: Instant,
    next_send: Instant,
    sends_left: u32,
    deadline: Instant,
    /// An offer for a new call: anchored once it succeeds.
    new_call: bool,
}

/// The most calls remembered as moved to another instance (fail-over) at once; each entry is
/// removed by its call's delete.
const MAX_MOVED_CALLS: usize = 65_536;

/// How long a moved call is remembered without its delete.
const MOVED_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What both threads share.
#[derive(Default)]
struct Shared {
    pending: HashMap<Vec<u8>, Pending>,
    /// Calls sent to another instance than their hash names (fail-over), by Call-ID: the
    /// instance, and when the call moved.
    moved: HashMap<Vec<u8>, (usize, Instant)>,
}

struct Client {
    media: Arc<Media>,
    socket: UdpSocket,
    shared: Arc<Mutex<Shared>>,
    replier: Replier,
    cookie: u64,
    buf: Vec<u8>,
    next_ping: Instant,
}

impl SideService for NgClient {
    fn run(self: Box<Self>, questions: Questions) {
        let NgClient { media, socket } = *self;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = socket.try_clone().map(|socket| {
            let reading = Reading {
                media: Arc::clone(&media),
                socket,
                shared: Arc::clone(&shared),
                replier: questions.replier(),
                stop: Arc::clone(&stop),
            };
            std::thread::Builder::new()
                .name("ferrovia-media-rx".into())
                .spawn(move || reading.run())
        });
        let reader = match reader {
            Ok(Ok(handle)) => Some(handle),
            Ok(Err(e)) | Err(e) => {
                warn!("media: cannot start the reply reader: {e}; every command will time out");
                None
            }
        };
        let mut client = Client {
            media,
            socket,
            shared,
            replier: questions.replier(),
            cookie: u64::from(std::process::id()) << 32,
            buf: Vec::with_capacity(4096),
            next_ping: Instant::now(),
        };
        loop {
            match questions.recv_timeout(TICK) {
                Err(()) => break,
                Ok(Some(question)) => client.ask(question),
                Ok(None) => {}
            }
            client.tick(Instant::now());
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(reader) = reader {
            let _ = reader.join();
        }
    }
}

impl Client {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic on the other thread cannot leave the maps half-changed in a way that
        // matters here: take them as they are.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_cookie(&mut self) -> Vec<u8> {
        self.cookie += 1;
        format!("{:x}", self.cookie).into_bytes()
    }

    fn ask(&mut self, question: Question) {
        let asker = question.asker();
        let Query::Media(query) = question.into_query() else {
            return;
        };
        let Some(instance) = self.instance(&query) else {
            self.media
                .counters
                .request(query.command, Outcome::Unavailable);
            self.answer(asker, MediaAnswer::Failed);
            return;
        };
        let cookie = self.next_cookie();
        let media = Arc::clone(&self.media);
        let config = &media.config;
        let extras = Extras {
            flags: Some(config.flags(query.toward)),
            delete_delay: config.delete_delay,
        };
        ng::encode(&mut self.buf, &cookie, &query, extras);
        let now = Instant::now();
        let pending = Pending {
            asker: Some(asker),
            command: query.command,
            datagram: self.buf.clone(),
            instance,
            first_sent: now,
            next_send: now + self.resend_interval(),
            sends_left: config.retries,
            deadline: now + config.timeout,
            new_call: query.new_call && query.command == Command::Offer,
        };
        // Pending before it is sent: the reply may come back before `send_to` returns.
        {
            let mut shared = self.lock();
            if query.command == Command::Delete {
                shared.moved.remove(&query.call_id);
            }
            shared.pending.insert(cookie, pending);
        }
        let datagram = std::mem::take(&mut self.buf);
        self.send(instance, &datagram);
        self.buf = datagram;
    }

    /// The instance for a query: the one its Call-ID hashes to, unless the call moved; a new
    /// call whose instance is down goes to the next one up. `None`: nothing usable.
    fn instance(&self, query: &MediaQuery) -> Option<usize> {
        let count = self.media.config.rtpengine.len();
        if count == 0 {
            return None;
        }
        let counters = &self.media.counters;
        if let Some(&(moved, _)) = self.lock().moved.get(&query.call_id) {
            return Some(moved);
        }
        let home = choose(&query.call_id, count);
        if counters.is_up(home) {
            return Some(home);
        }
        if !query.new_call {
            // Its session lives on the instance that is down: nothing else knows it.
            return None;
        }
        let spare = (1..count)
            .map(|i| (home + i) % count)
            .find(|&i| counters.is_up(i))?;
        let mut shared = self.lock();
        // Bounded like every table: past the bound a new call whose instance is down is not
        // moved but fails (its fallback is counted), rather than the table growing.
        if shared.moved.len() >= MAX_MOVED_CALLS {
            return None;
        }
        shared
            .moved
            .insert(query.call_id.clone(), (spare, Instant::now()));
        Some(spare)
    }

    fn resend_interval(&self) -> Duration {
        let config = &self.media.config;
        config.timeout / (config.retries + 1)
    }

    fn send(&self, instance: usize, datagram: &[u8]) {
        if let Some(addr) = self.media.config.rtpengine.get(instance)
            && let Err(e) = self.socket.send_to(datagram, addr)
        {
            debug!("media: send to {addr}: {e}");
        }
    }

    fn answer(&self, asker: Asker, answer: MediaAnswer) {
        self.replier.reply(asker, Answer::Media(Box::new(answer)));
    }

    /// Sends again what is due, gives up on what is past its deadline, pings when due.
    fn tick(&mut self, now: Instant) {
        let interval = self.resend_interval();
        let mut expired = Vec::new();
        let mut resend = Vec::new();
        {
            let mut shared = self.lock();
            shared.pending.retain(|_, p| {
                if now >= p.deadline {
                    expired.push((p.asker, p.command, p.instance));
                    return false;
                }
                if now >= p.next_send && p.sends_left > 0 {
                    p.sends_left -= 1;
                    p.next_send = now + interval;
                    resend.push((p.instance, p.datagram.clone()));
                }
                true
            });
        }
        for (instance, datagram) in resend {
            self.send(instance, &datagram);
        }
        for (asker, command, instance) in expired {
            self.media.counters.request(command, Outcome::Timeout);
            if self.media.counters.is_up(instance) {
                info!(
                    "media: rtpengine {} is not answering",
                    self.address(instance)
                );
            }
            self.media.counters.set_up(instance, false);
            if let Some(asker) = asker {
                self.answer(asker, MediaAnswer::Failed);
            }
        }
        if now >= self.next_ping {
            self.next_ping = now + self.media.config.ping_interval;
            self.ping(now);
            // A moved call whose delete never came (a lost BYE) is forgotten after a day.
            self.lock()
                .moved
                .retain(|_, (_, since)| now.saturating_duration_since(*since) < MOVED_LIFETIME);
        }
    }

    /// One ping to every instance; a ping times out after one interval.
    fn ping(&mut self, now: Instant) {
        let interval = self.media.config.ping_interval;
        for instance in 0..self.media.config.rtpengine.len() {
            let cookie = self.next_cookie();
            ng::encode_ping(&mut self.buf, &cookie);
            let datagram = self.buf.clone();
            let pending = Pending {
                asker: None,
                command: Command::Ping,
                datagram,
                instance,
                first_sent: now,
                next_send: now + interval,
                sends_left: 0,
                deadline: now + interval,
                new_call: false,
            };
            // Pending before it is sent (see `ask`).
            self.lock().pending.insert(cookie, pending);
            self.send(instance, &self.buf);
        }
    }

    fn address(&self, instance: usize) -> String {
        self.media
            .config
            .rtpengine
            .get(instance)
            .map_or_else(String::new, ToString::to_string)
    }
}

/// The instance a Call-ID hashes to (FNV-1a: stable across processes and restarts, so every
/// ferrovia in front of the same instances picks the same one).
pub(crate) fn choose(call_id: &[u8], count: usize) -> usize {
    let hash = call_id.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % count.max(1) as u64) as usize
}

/// The reader thread.
struct Reading {
    media: Arc<Media>,
    socket: UdpSocket,
    shared: Arc<Mutex<Shared>>,
    replier: Replier,
    stop: Arc<AtomicBool>,
}

impl Reading {
    fn run(self) {
        let mut buf = vec![0u8; MAX_REPLY];
        while !self.stop.load(Ordering::Relaxed) {
            let Ok((len, from)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            self.reply(&buf[..len], from);
        }
    }

    fn reply(&self, datagram: &[u8], from: SocketAddr) {
        let counters = &self.media.counters;
        let Some(reply) = Reply::parse(datagram) else {
            // A reply that cannot be read: its command fails now rather than at its deadline.
            let cookie = datagram.split(|&b| b == b' ').next().unwrap_or_default();
            debug!("media: unreadable reply from {from}");
            if let Some(pending) = self.take(cookie) {
                counters.request(pending.command, Outcome::Malformed);
                if let Some(asker) = pending.asker {
                    self.replier
                        .reply(asker, Answer::Media(Box::new(MediaAnswer::Failed)));
                }
            }
            return;
        };
        let Some(pending) = self.take(reply.cookie) else {
            return; // late (given up already) or not ours
        };
        counters.round_trip(pending.first_sent.elapsed());
        if !counters.is_up(pending.instance) {
            info!("media: rtpengine {from} is answering");
        }
        // Any reply at all means the instance is alive.
        counters.set_up(pending.instance, true);
        let answer = match (reply.is_ok(), reply.sdp, pending.command) {
            (true, Some(sdp), Command::Offer | Command::Answer) => MediaAnswer::Sdp(sdp.to_vec()),
            (true, _, Command::Delete | Command::Query) => MediaAnswer::Done,
            (_, _, Command::Ping) if reply.is_pong() => MediaAnswer::Done,
            _ => {
                let reason = reply.error_reason.unwrap_or_default();
                debug!(
                    "media: {} refused: {}",
                    pending.command.name(),
                    String::from_utf8_lossy(reason)
                );
                MediaAnswer::Failed
            }
        };
        let outcome = match answer {
            MediaAnswer::Failed if reply.is_ok() => Outcome::Malformed, // `ok` without SDP
            MediaAnswer::Failed => Outcome::Error,
            _ => Outcome::Ok,
        };
        counters.request(pending.command, outcome);
        if pending.new_call && outcome == Outcome::Ok {
            counters.anchored();
        }
        if let Some(asker) = pending.asker {
            self.replier.reply(asker, Answer::Media(Box::new(answer)));
        }
    }

    fn take(&self, cookie: &[u8]) -> Option<Pending> {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.pending.remove(cookie)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_id_always_hashes_to_the_same_instance() {
        assert_eq!(choose(b"a84b4c76e66710", 3), choose(b"a84b4c76e66710", 3));
        assert_eq!(choose(b"anything", 1), 0);
        assert_eq!(choose(b"anything", 0), 0);
        // Over many Call-IDs every instance gets some.
        let mut seen = [0; 3];
        for i in 0..300 {
            seen[choose(format!("call-{i}@h").as_bytes(), 3)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}

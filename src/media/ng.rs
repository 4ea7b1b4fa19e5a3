//! The NG control protocol of rtpengine: a datagram is `<cookie> <bencoded dictionary>`, and
//! the reply carries the same cookie. This module writes commands and reads replies; the
//! socket, retries and the choice of instance are the client's (`client.rs`).

use std::net::IpAddr;

use super::bencode::{Value, Writer};
use super::table::Operation;

/// An NG command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Offer,
    Answer,
    Delete,
    Query,
    Ping,
}

impl Command {
    pub const ALL: [Command; 5] = [
        Command::Offer,
        Command::Answer,
        Command::Delete,
        Command::Query,
        Command::Ping,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Command::Offer => "offer",
            Command::Answer => "answer",
            Command::Delete => "delete",
            Command::Query => "query",
            Command::Ping => "ping",
        }
    }

    /// The command for an operation of the decision table (`None` for [`Operation::None`]).
    pub fn of(operation: Operation) -> Option<Command> {
        match operation {
            Operation::None => None,
            Operation::Offer => Some(Command::Offer),
            Operation::Answer => Some(Command::Answer),
            Operation::Delete => Some(Command::Delete),
        }
    }
}

/// Which way a message travels: `Callee` when it goes where the dialog's initial INVITE
/// went (that INVITE, the caller's in-dialog requests, the callee's responses to the callee's
/// own requests), `Caller` the other way. Each way has its own flags (`[media.toward-callee]`,
/// `[media.toward-caller]`): they shape the SDP that leaves toward that party.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toward {
    Callee,
    Caller,
}

/// What the core asks rtpengine for one message (boxed in `Query::Media`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaQuery {
    pub command: Command,
    pub call_id: Vec<u8>,
    /// The offerer's tag (RFC 3261 §19.3; see `table::swaps_tags`).
    pub from_tag: Vec<u8>,
    /// The other party's tag, when known.
    pub to_tag: Option<Vec<u8>>,
    /// The SDP body (offer and answer only).
    pub sdp: Vec<u8>,
    /// Where the message is going: whose flags apply.
    pub toward: Toward,
    /// Where the SIP message came from (`received-from`, for `SIP-source-address`).
    pub source: IpAddr,
    /// An offer outside a dialog: a new call, which may go to another instance when the
    /// usual one is down.
    pub new_call: bool,
}

/// What came back from rtpengine (boxed in `Answer::Media`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaAnswer {
    /// The rewritten SDP of an offer or answer.
    Sdp(Vec<u8>),
    /// A delete (or another command without SDP) succeeded.
    Done,
    /// rtpengine refused, or no instance is usable; the core applies the fallback.
    Failed,
}

/// The flags of one direction, as rtpengine's NG dictionary wants them; parsed once from the
/// configuration's words (the same words Kamailio's `rtpengine_offer()` takes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `flags` list entries: `trust-address`, `SIP-source-address`, `symmetric`, ...
    pub flags: Vec<String>,
    /// `replace` list entries: `origin`, `session-connection`.
    pub replace: Vec<String>,
    /// `rtcp-mux` list entries: `offer`, `demux`, `accept`, ...
    pub rtcp_mux: Vec<String>,
    /// `KEY=VALUE` dictionary entries: `ICE=remove`, `DTLS=off`, `transport-protocol=...`.
    pub entries: Vec<(String, String)>,
}

/// Transport protocols that may be written as a bare word.
const PROTOCOLS: [&str; 6] = [
    "RTP/AVP",
    "RTP/SAVP",
    "RTP/AVPF",
    "RTP/SAVPF",
    "UDP/TLS/RTP/SAVP",
    "UDP/TLS/RTP/SAVPF",
];

impl Flags {
    /// Parses space-separated words: `replace-X` → `replace`, `rtcp-mux-X` → `rtcp-mux`,
    /// `KEY=VALUE` → an entry, a transport protocol (`RTP/AVP`, `UDP/TLS/RTP/SAVPF`, ...) →
    /// `transport-protocol`, any other word → `flags`.
    pub fn parse(words: &str) -> Result<Flags, String> {
        let mut flags = Flags::default();
        for word in words.split_ascii_whitespace() {
            if let Some(what) = word.strip_prefix("replace-") {
                flags.replace.push(what.into());
            } else if let Some(what) = word.strip_prefix("rtcp-mux-") {
                flags.rtcp_mux.push(what.into());
            } else if let Some((key, value)) = word.split_once('=') {
                if key.is_empty() || value.is_empty() {
                    return Err(format!("media flag {word:?}: KEY=VALUE needs both"));
                }
                flags.entries.push((key.into(), value.into()));
            } else if PROTOCOLS.contains(&word) {
                flags
                    .entries
                    .push(("transport-protocol".into(), word.into()));
            } else if word.bytes().all(|b| b.is_ascii_graphic()) {
                flags.flags.push(word.into());
            } else {
                return Err(format!("media flag {word:?} is not a word"));
            }
        }
        if let Some(key) = flags
            .entries
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| RESERVED.contains(k))
        {
            return Err(format!("media flag {key}= is set by ferrovia itself"));
        }
        Ok(flags)
    }
}

/// Keys the client writes itself.
const RESERVED: [&str; 7] = [
    "call-id",
    "command",
    "from-tag",
    "to-tag",
    "sdp",
    "received-from",
    "delete-delay",
];

/// What one command needs besides the query: its flags and the delete delay.
#[derive(Clone, Copy, Debug)]
pub struct Extras<'a> {
    pub flags: Option<&'a Flags>,
    /// Seconds before rtpengine forgets a deleted call (`delete-delay`); `None`: its own.
    pub delete_delay: Option<u32>,
}

/// Writes `cookie` and the command for `query` into `buf` (cleared first).
pub fn encode(buf: &mut Vec<u8>, cookie: &[u8], query: &MediaQuery, extras: Extras<'_>) {
    buf.clear();
    buf.extend_from_slice(cookie);
    buf.push(b' ');
    let command = query.command;
    let sdp = matches!(command, Command::Offer | Command::Answer);
    // Keys in sorted order (bencode's canonical form).
    let mut keys: Vec<(&str, Item<'_>)> = vec![
        ("call-id", Item::Bytes(&query.call_id)),
        ("command", Item::Bytes(command.name().as_bytes())),
        ("from-tag", Item::Bytes(&query.from_tag)),
    ];
    if let Some(to) = &query.to_tag {
        keys.push(("to-tag", Item::Bytes(to)));
    }
    if sdp {
        keys.push(("sdp", Item::Bytes(&query.sdp)));
        keys.push(("received-from", Item::Source(query.source)));
    }
    if let (Command::Delete, Some(delay)) = (command, extras.delete_delay) {
        keys.push(("delete-delay", Item::Int(i64::from(delay))));
    }
    if let Some(flags) = extras.flags.filter(|_| sdp) {
        push_flags(&mut keys, flags);
    }
    keys.sort_by(|a, b| a.0.cmp(b.0));
    let mut w = Writer::new(buf);
    w.dict();
    for (key, item) in keys {
        w.bytes(key.as_bytes());
        item.write(&mut w);
    }
    w.end();
}

/// A ping: `<cookie> d7:command4:pinge`.
pub fn encode_ping(buf: &mut Vec<u8>, cookie: &[u8]) {
    buf.clear();
    buf.extend_from_slice(cookie);
    buf.push(b' ');
    Writer::new(buf).dict().entry("command", b"ping").end();
}

/// A query of a call's statistics (used by tests and operators).
pub fn encode_query(buf: &mut Vec<u8>, cookie: &[u8], call_id: &[u8]) {
    buf.clear();
    buf.extend_from_slice(cookie);
    buf.push(b' ');
    Writer::new(buf)
        .dict()
        .entry("call-id", call_id)
        .entry("command", b"query")
        .end();
}

fn push_flags<'a>(keys: &mut Vec<(&'a str, Item<'a>)>, flags: &'a Flags) {
    if !flags.flags.is_empty() {
        keys.push(("flags", Item::List(&flags.flags)));
    }
    if !flags.replace.is_empty() {
        keys.push(("replace", Item::List(&flags.replace)));
    }
    if !flags.rtcp_mux.is_empty() {
        keys.push(("rtcp-mux", Item::List(&flags.rtcp_mux)));
    }
    for (key, value) in &flags.entries {
        keys.push((key, Item::Bytes(value.as_bytes())));
    }
}

enum Item<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    List(&'a [String]),
    Source(IpAddr),
}

impl Item<'_> {
    fn write(&self, w: &mut Writer<'_>) {
        match self {
            Item::Bytes(b) => {
                w.bytes(b);
            }
            Item::Int(n) => {
                w.int(*n);
            }
            Item::List(words) => {
                w.list();
                for word in words.iter() {
                    w.bytes(word.as_bytes());
                }
                w.end();
            }
            Item::Source(ip) => {
                let family: &[u8] = if ip.is_ipv4() { b"IP4" } else { b"IP6" };
                w.list()
                    .bytes(family)
                    .bytes(ip.to_string().as_bytes())
                    .end();
            }
        }
    }
}

/// A reply, read in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    pub cookie: &'a [u8],
    /// `ok`, `pong`, `error`, ...
    pub result: &'a [u8],
    pub sdp: Option<&'a [u8]>,
    pub error_reason: Option<&'a [u8]>,
    /// The whole dictionary (a `query`'s statistics).
    pub body: Value<'a>,
}

impl<'a> Reply<'a> {
    /// `None` for anything that is not `<cookie> <dictionary with a result>`.
    pub fn parse(datagram: &'a [u8]) -> Option<Reply<'a>> {
        let space = memchr::memchr(b' ', datagram)?;
        let (cookie, rest) = (&datagram[..space], &datagram[space + 1..]);
        if cookie.is_empty() {
            return None;
        }
        let (body, _) = Value::decode(rest).ok()?;
        let result = body.get(b"result")?.as_bytes()?;
        Some(Reply {
            cookie,
            result,
            sdp: body.get(b"sdp").and_then(Value::as_bytes),
            error_reason: body.get(b"error-reason").and_then(Value::as_bytes),
            body,
        })
    }

    pub fn is_ok(&self) -> bool {
        self.result == b"ok"
    }

    pub fn is_pong(&self) -> bool {
        self.result == b"pong"
    }
}

/// Packets relayed for a call, summed from a `query` reply's `totals` (RTP and RTCP, both
/// directions); `None` when the reply has no totals.
pub fn relayed_packets(reply: &Reply<'_>) -> Option<i64> {
    let totals = reply.body.get(b"totals")?;
    let mut sum = 0;
    for part in [&b"RTP"[..], b"RTCP"] {
        if let Some(packets) = totals
            .get(part)
            .and_then(|p| p.get(b"packets"))
            .and_then(Value::as_int)
        {
            sum += packets;
        }
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(command: Command) -> MediaQuery {
        MediaQuery {
            command,
            call_id: b"c1@h".to_vec(),
            from_tag: b"f1".to_vec(),
            to_tag: None,
            sdp: b"v=0\r\n".to_vec(),
            toward: Toward::Callee,
            source: "192.0.2.7".parse().unwrap(),
            new_call: true,
        }
    }

    #[test]
    fn flags_parse_like_kamailio_words() {
        let f = Flags::parse(
            "replace-origin replace-session-connection ICE=remove RTP/AVP trust-address rtcp-mux-demux",
        )
        .unwrap();
        assert_eq!(f.replace, ["origin", "session-connection"]);
        assert_eq!(f.flags, ["trust-address"]);
        assert_eq!(f.rtcp_mux, ["demux"]);
        assert_eq!(
            f.entries,
            [
                ("ICE".to_string(), "remove".to_string()),
                ("transport-protocol".to_string(), "RTP/AVP".to_string())
            ]
        );
        assert!(Flags::parse("ICE=").is_err());
        assert!(Flags::parse("call-id=x").is_err());
        assert_eq!(Flags::parse("").unwrap(), Flags::default());
    }

    #[test]
    fn an_offer_is_one_sorted_dictionary() {
        let flags = Flags::parse("replace-origin SIP-source-address ICE=remove").unwrap();
        let mut buf = Vec::new();
        let extras = Extras {
            flags: Some(&flags),
            delete_delay: Some(0),
        };
        encode(&mut buf, b"7_1", &query(Command::Offer), extras);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "7_1 d3:ICE6:remove7:call-id4:c1@h7:command5:offer5:flagsl18:SIP-source-addresse\
8:from-tag2:f113:received-froml3:IP49:192.0.2.7e7:replacel6:origine3:sdp5:v=0\r\ne"
        );
    }

    #[test]
    fn a_delete_carries_the_delay_and_no_sdp() {
        let mut q = query(Command::Delete);
        q.to_tag = Some(b"t9".to_vec());
        let mut buf = Vec::new();
        let extras = Extras {
            flags: None,
            delete_delay: Some(0),
        };
        encode(&mut buf, b"x", &q, extras);
        assert_eq!(
            String::from_utf8(buf.clone()).unwrap(),
            "x d7:call-id4:c1@h7:command6:delete12:delete-delayi0e8:from-tag2:f16:to-tag2:t9e"
        );
        encode_ping(&mut buf, b"p1");
        assert_eq!(buf, b"p1 d7:command4:pinge");
    }

    #[test]
    fn replies_are_read_and_garbage_is_refused() {
        let r = Reply::parse(b"7_1 d3:sdp3:v=06:result2:oke").unwrap();
        assert_eq!(r.cookie, b"7_1");
        assert!(r.is_ok());
        assert_eq!(r.sdp, Some(&b"v=0"[..]));
        let r = Reply::parse(b"c d12:error-reason7:Unknown6:result5:errore").unwrap();
        assert!(!r.is_ok());
        assert_eq!(r.error_reason, Some(&b"Unknown"[..]));
        assert!(Reply::parse(b"p d6:result4:ponge").unwrap().is_pong());
        for bad in [
            &b""[..],
            b"nocookie",
            b" d6:result2:oke",
            b"c d3:sdp3:v=0e",
            b"c d6:resulti1ee",
            b"c d6:result2:ok",
            b"c l6:resulte",
        ] {
            assert_eq!(
                Reply::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn query_totals_count_relayed_packets() {
        let r = Reply::parse(b"q d6:result2:ok6:totalsd3:RTPd7:packetsi40ee4:RTCPd7:packetsi2eeee")
            .unwrap();
        assert_eq!(relayed_packets(&r), Some(42));
        let r = Reply::parse(b"q d6:result2:oke").unwrap();
        assert_eq!(relayed_packets(&r), None);
    }
}

//! `/bans` on the metrics server: edge protection's bans, listed and lifted.
//!
//! - `GET /bans`: a JSON array of the active bans, longest-running first (`[]` when
//!   protection is off or nothing is banned). Each: `source`, `reason` (`rate` / `scanner`),
//!   `banned_seconds_ago`, `remaining_seconds`, `strikes`, `dropped`.
//! - `DELETE /bans/IP` (IPv6 in brackets or bare, its /64 is lifted): 200 when the source
//!   was banned and is no longer, 404 when it was not banned, 400 for something not an IP.
//!
//! The metrics server listens on loopback by default; whoever can reach it can lift bans.

use std::net::IpAddr;
use std::time::Instant;

use super::routes::Response;
use crate::protect::{BanView, Protection};

/// The answer for a `/bans` path; `None` for any other path.
pub(super) fn answer(
    method: &str,
    target: &str,
    protect: Option<&Protection>,
    now: Instant,
) -> Option<Response> {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path == "/bans" {
        return Some(match method {
            "GET" => list(protect, now),
            _ => Response::not_allowed("GET"),
        });
    }
    let ip = path.strip_prefix("/bans/")?;
    Some(match method {
        "DELETE" => lift(protect, ip, now),
        _ => Response::not_allowed("DELETE"),
    })
}

fn list(protect: Option<&Protection>, now: Instant) -> Response {
    let bans: Vec<BanView> = protect.map(|p| p.report(now).bans).unwrap_or_default();
    // Strings, integers and floats only: serializing cannot fail.
    let body = serde_json::to_string_pretty(&bans).unwrap_or_else(|_| "[]".into());
    Response::ok("application/json", body + "\n")
}

fn lift(protect: Option<&Protection>, text: &str, now: Instant) -> Response {
    let bare = text.trim_start_matches('[');
    let bare = bare.split([']', '/', '%']).next().unwrap_or_default();
    let Ok(ip) = bare.parse::<IpAddr>() else {
        return Response::error(400, &format!("not an IP address: {text:?}"));
    };
    match protect {
        Some(p) if p.lift(ip, now) => {
            Response::ok("text/plain; charset=utf-8", format!("lifted {ip}\n"))
        }
        _ => Response::error(404, &format!("{ip} is not banned")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protect::{CidrSet, Limit, ProtectConfig};
    use std::time::Duration;

    fn protection() -> Protection {
        let config = ProtectConfig {
            limits: [Some(Limit {
                per_second: 1,
                burst: 1,
            }); 3],
            ban_after: Some(Duration::ZERO),
            allow: CidrSet::default(),
            ..ProtectConfig::default()
        };
        Protection::new(&config, 1)
    }

    #[test]
    fn bans_are_listed_and_lifted() {
        let p = protection();
        let now = Instant::now();
        let msg = b"OPTIONS sip:x SIP/2.0\r\n\r\n";
        let (src, local) = (
            "192.0.2.7:5060".parse().unwrap(),
            "127.0.0.1:5060".parse().unwrap(),
        );
        for _ in 0..3 {
            let _ = p.check(msg, src, local, crate::proxy::Transport::Udp, now);
        }
        let listed = answer("GET", "/bans", Some(&p), now).unwrap();
        assert_eq!(listed.status, 200);
        let bans: Vec<BanView> = serde_json::from_str(&listed.body).unwrap();
        assert_eq!(
            (bans.len(), bans[0].source.as_str(), bans[0].reason.as_str()),
            (1, "192.0.2.7", "rate")
        );
        assert_eq!(
            answer("DELETE", "/bans/192.0.2.8", Some(&p), now)
                .unwrap()
                .status,
            404
        );
        assert_eq!(
            answer("DELETE", "/bans/banana", Some(&p), now)
                .unwrap()
                .status,
            400
        );
        assert_eq!(
            answer("DELETE", "/bans/192.0.2.7", Some(&p), now)
                .unwrap()
                .status,
            200
        );
        assert_eq!(
            answer("DELETE", "/bans/192.0.2.7", Some(&p), now)
                .unwrap()
                .status,
            404
        );
        let empty = answer("GET", "/bans", Some(&p), now).unwrap();
        assert_eq!(empty.body.trim(), "[]");
        assert_eq!(answer("GET", "/bans", None, now).unwrap().body.trim(), "[]");
        assert_eq!(answer("POST", "/bans", None, now).unwrap().status, 405);
        let get_one = answer("GET", "/bans/1.2.3.4", None, now).unwrap();
        assert!(String::from_utf8_lossy(&get_one.to_bytes()).contains("Allow: DELETE\r\n"));
        assert!(answer("GET", "/stats", None, now).is_none());
        assert!(answer("GET", "/bansx", None, now).is_none());
        assert_eq!(
            answer("DELETE", "/bans/[2001:db8::1]", Some(&p), now)
                .unwrap()
                .status,
            404
        );
    }
}

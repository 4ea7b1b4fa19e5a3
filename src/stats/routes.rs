//! What the metrics server answers, as a pure function of the request head and a snapshot.
//!
//! - `GET /metrics`: Prometheus text.
//! - `GET /stats`: the JSON [`Report`](super::Report).
//! - `GET /stats.hgrm`: `.hgrm` text, by default of the merged forwarding latency since start;
//!   the query picks another: `series=request|response|reply|forwarded`, `worker=N`,
//!   `window=cumulative|last`.
//!
//! 400 for a request httparse rejects or a bad query, 404 for any other path, 405 for any
//! method but GET on a known path, 503 when no snapshot could be had.

use hdrhistogram::Histogram;

use super::{Series, Snapshot, View, hgrm, prometheus};

/// Header slots for parsing; a request with more headers is answered 400.
const MAX_HEADERS: usize = 32;

/// A complete HTTP/1.1 response with `Connection: close`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Response {
    pub(super) status: u16,
    content_type: &'static str,
    /// The methods a 405 names in `Allow`.
    allow: Option<&'static str>,
    pub(super) body: String,
}

impl Response {
    pub(super) fn ok(content_type: &'static str, body: String) -> Response {
        Response {
            status: 200,
            content_type,
            allow: None,
            body,
        }
    }

    pub(super) fn error(status: u16, message: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            allow: (status == 405).then_some("GET"),
            body: format!("{message}\n"),
        }
    }

    /// 405, naming the methods the path takes.
    pub(super) fn not_allowed(allow: &'static str) -> Response {
        Response {
            allow: Some(allow),
            ..Response::error(405, &format!("only {allow} is allowed here"))
        }
    }

    /// The bytes on the wire.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let allow = match self.allow {
            Some(methods) => format!("Allow: {methods}\r\n"),
            None => String::new(),
        };
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}\
             Connection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// How far a buffer holds a request head.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Head {
    /// Parsed: the method and the request target.
    Complete { method: String, target: String },
    /// Valid so far; more bytes are needed.
    Partial,
    /// Not HTTP/1.x, or too many headers.
    Invalid,
}

/// Parses a request head with httparse; never panics on any input.
pub(super) fn parse(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(_)) => match (request.method, request.path) {
            (Some(method), Some(target)) => Head::Complete {
                method: method.to_string(),
                target: target.to_string(),
            },
            _ => Head::Invalid,
        },
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(_) => Head::Invalid,
    }
}

/// Answers a parsed request; `snapshot` is called only for a valid GET of a known path.
pub(super) fn answer(
    method: &str,
    target: &str,
    snapshot: impl FnOnce() -> Option<Snapshot>,
) -> Response {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let known = ["/metrics", "/stats", "/stats.hgrm", "/location", "/groups"];
    if !known.contains(&path) {
        return Response::error(
            404,
            "not found: try /metrics, /stats, /stats.hgrm, /location or /groups",
        );
    }
    if method != "GET" {
        return Response::error(405, "only GET is allowed");
    }
    let selection = match Selection::parse(query) {
        Ok(selection) => selection,
        Err(message) if path == "/stats.hgrm" => return Response::error(400, message),
        Err(_) => Selection::default(), // other paths ignore their query
    };
    let Some(snapshot) = snapshot() else {
        return Response::error(503, "statistics are not available");
    };
    match path {
        "/metrics" => Response::ok(prometheus::CONTENT_TYPE, snapshot.prometheus()),
        "/stats" => Response::ok("application/json", snapshot.json()),
        "/location" => match snapshot.location_json() {
            Some(json) => Response::ok("application/json", json),
            None => Response::error(404, "the registrar is off"),
        },
        "/groups" => Response::ok("application/json", groups_json(&snapshot)),
        _ => match selection.histogram(&snapshot) {
            Some(h) => Response::ok("text/plain; charset=utf-8", hgrm(&h)),
            None => Response::error(404, "no such worker"),
        },
    }
}

/// `POST /reload`: re-read and recompile the policy (200), or say why the old one stays
/// (500 with file:line; 503 when the service runs no policy or did not answer in time).
pub(super) fn answer_reload(
    method: &str,
    reload: impl FnOnce() -> Option<Result<String, String>>,
) -> Response {
    if method != "POST" {
        return Response::not_allowed("POST");
    }
    match reload() {
        Some(Ok(message)) => Response::ok("text/plain; charset=utf-8", format!("{message}\n")),
        Some(Err(message)) if message == "no policy to reload" => Response::error(503, &message),
        Some(Err(message)) => Response::error(500, &message),
        None => Response::error(503, "the reload did not finish in time"),
    }
}

/// `GET /groups`: every group's live count and each destination's state and counters (an
/// empty list when no group is configured).
fn groups_json(snapshot: &Snapshot) -> String {
    let empty = crate::groups::GroupsSnapshot::default();
    let groups = snapshot.groups().unwrap_or(&empty);
    // Strings, integers and lists only: serde_json writes them without error.
    serde_json::to_string_pretty(groups).expect("a groups snapshot always serializes")
}

/// Which histogram `/stats.hgrm` prints.
#[derive(Debug, Default, PartialEq, Eq)]
struct Selection {
    /// `None`: requests and responses together.
    series: Option<Series>,
    /// `None`: all workers merged.
    worker: Option<usize>,
    last_interval: bool,
}

impl Selection {
    fn parse(query: &str) -> Result<Selection, &'static str> {
        let mut selection = Selection::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match (key, value) {
                ("series", "forwarded") => selection.series = None,
                ("series", name) => selection.series = Some(series_named(name)?),
                ("worker", n) => selection.worker = Some(n.parse().map_err(|_| "bad worker")?),
                ("window", "cumulative") => selection.last_interval = false,
                ("window", "last") => selection.last_interval = true,
                ("window", _) => return Err("window is cumulative or last"),
                _ => return Err("query keys: series, worker, window"),
            }
        }
        Ok(selection)
    }

    fn histogram(&self, snapshot: &Snapshot) -> Option<Histogram<u64>> {
        let views = match self.worker {
            Some(i) => snapshot.workers().get(i)?,
            None => snapshot.merged(),
        };
        let view: &View = match self.last_interval {
            true => &views.last_interval,
            false => &views.cumulative,
        };
        Some(match self.series {
            Some(series) => view.latency(series).clone(),
            None => view.forwarded_latency(),
        })
    }
}

fn series_named(name: &str) -> Result<Series, &'static str> {
    Series::ALL
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or("series is request, response, reply or forwarded")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> Response {
        answer("GET", target, || Some(Snapshot::empty()))
    }

    #[test]
    fn request_heads_parse_or_are_rejected() {
        let complete = parse(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n");
        let want = Head::Complete {
            method: "GET".into(),
            target: "/stats".into(),
        };
        assert_eq!(complete, want);
        assert_eq!(parse(b"GET /stats HTTP/1.1\r\nHo"), Head::Partial);
        assert_eq!(parse(b""), Head::Partial);
        assert_eq!(parse(b"\x00\x01garbage\r\n\r\n"), Head::Invalid);
        assert_eq!(parse(b"GET /stats HTTP/9.9\r\n\r\n"), Head::Invalid);
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(parse(many.as_bytes()), Head::Invalid);
    }

    #[test]
    fn paths_methods_and_queries_get_their_status() {
        assert_eq!(get("/metrics").status, 200);
        assert_eq!(get("/stats").status, 200);
        assert_eq!(get("/stats?pretty").status, 200);
        assert_eq!(get("/stats.hgrm").status, 200);
        assert_eq!(get("/groups").status, 200);
        assert_eq!(get("/groups").body.trim(), "{\n  \"groups\": []\n}");
        assert_eq!(get("/stats.hgrm?series=reply&window=last").status, 200);
        assert_eq!(get("/stats.hgrm?series=bogus").status, 400);
        assert_eq!(get("/stats.hgrm?worker=x").status, 400);
        assert_eq!(get("/stats.hgrm?worker=0").status, 404); // the empty snapshot has none
        assert_eq!(get("/").status, 404);
        assert_eq!(get("/metrics/").status, 404);
        let post = answer("POST", "/metrics", || Some(Snapshot::empty()));
        assert_eq!(post.status, 405);
        assert!(String::from_utf8_lossy(&post.to_bytes()).contains("Allow: GET\r\n"));
        assert_eq!(answer("GET", "/stats", || None).status, 503);
    }

    #[test]
    fn responses_carry_length_and_close() {
        let bytes = Response::ok("text/plain", "hi".into()).to_bytes();
        let want = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
                    Connection: close\r\n\r\nhi";
        assert_eq!(String::from_utf8(bytes).unwrap(), want); // ASCII built above
    }
}

//! `ferrovia stats`: reads `/stats` from a running proxy and prints it as a table.
//!
//! One HTTP/1.1 GET over loopback with a timeout on every step and a cap on the answer's
//! size; the JSON is the [`Report`] the server writes, printed the same way as the shutdown
//! summary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::Report;

/// The longest wait for connecting, sending and reading.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// Prints the counters, latency percentiles and latency bar chart of the proxy whose metrics
/// server is at `metrics`, on stdout.
pub fn run(metrics: SocketAddr) -> Result<(), String> {
    let report = fetch(metrics)?;
    let mut out = std::io::stdout().lock();
    write!(out, "{report}").map_err(|e| format!("cannot print: {e}"))
}

/// Reads the [`Report`] of the proxy whose metrics server is at `metrics`.
pub fn fetch(metrics: SocketAddr) -> Result<Report, String> {
    let body = get(metrics, "/stats")?;
    serde_json::from_slice(&body)
        .map_err(|e| format!("http://{metrics}/stats did not answer ferrovia's JSON: {e}"))
}

/// The body of a `200 OK` answer to `GET path`.
fn get(addr: SocketAddr, path: &str) -> Result<Vec<u8>, String> {
    let fail = |what: &str, e: std::io::Error| format!("{what} http://{addr}{path}: {e}");
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| fail("cannot connect to", e))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| fail("cannot set timeouts for", e))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail("cannot send to", e))?;
    let mut answer = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut answer)
        .map_err(|e| fail("cannot read from", e))?;
    body_of(&answer).map_err(|e| format!("http://{addr}{path}: {e}"))
}

/// The body of a complete HTTP/1.x answer with status 200.
fn body_of(answer: &[u8]) -> Result<Vec<u8>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(answer) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete HTTP answer".into()),
        Err(e) => return Err(format!("malformed HTTP answer: {e}")),
    };
    match response.code {
        Some(200) => Ok(answer[head_len..].to_vec()),
        code => Err(format!(
            "HTTP {} {}",
            code.unwrap_or(0),
            response.reason.unwrap_or("")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_of_good_and_bad_answers() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(body_of(ok), Ok(b"{}".to_vec()));
        let missing = b"HTTP/1.1 404 Not Found\r\n\r\nnope";
        assert_eq!(body_of(missing), Err("HTTP 404 Not Found".into()));
        assert!(body_of(b"HTTP/1.1 200 OK\r\nConte").is_err());
        assert!(body_of(b"\x00garbage\r\n\r\n").is_err());
    }
}

//! `--metrics-addr` from the outside: a free port, a plain HTTP GET, waiting
//! for an answer, and the sum of a family's samples read off the text
//! exposition (the strict OpenMetrics parse is in `tests/in_cluster.rs`).

// rustc judges dead code per test binary (see mod.rs).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::wait::poll_until;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// GET `path` on 127.0.0.1:`port`: the status code and the body, or None
/// when nothing answers.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Waits until `path` answers `code`.
pub async fn until_status(port: u16, path: &str, code: u16, limit: Duration) {
    poll_until(&format!("{path} to answer {code}"), limit, || async {
        match get(port, path) {
            Some((c, _)) if c == code => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// The sum of the samples of `/metrics` named `name` whose labels include
/// each `key="value"` of `with` (0 when there are none; None when nothing
/// answers).
pub fn scrape(port: u16, name: &str, with: &[(&str, &str)]) -> Option<f64> {
    let (code, text) = get(port, "/metrics")?;
    if code != 200 {
        return None;
    }
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (n, labels) = series.split_once('{').unwrap_or((series, ""));
                let wanted = n == name
                    && with
                        .iter()
                        .all(|(k, v)| labels.contains(&format!("{k}=\"{v}\"")));
                wanted.then(|| value.parse::<f64>().ok()).flatten()
            })
            .sum(),
    )
}

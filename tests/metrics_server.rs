//! The metrics port of `--watch` attacked with raw sockets, against the real
//! server of the binary: idle connections, 200 slowloris connections that
//! trickle their headers (and come back when closed), and connections that
//! pipeline requests and never read a response. Throughout, and after the
//! traffic stops, `/healthz` answers within the liveness probe's timeout of
//! deploy/deployment.yaml: the kubelet would never restart the cleaner. And
//! with no other traffic, the server closes such connections by itself
//! (header, idle and write timeouts), as its side of them in /proc/net/tcp
//! shows. The attacks come from 127.0.0.2, the probes from 127.0.0.1.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{commands::*, objects::*, wait::*};

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The Deployment's liveness probe timeout.
fn probe_timeout() -> Duration {
    let text = std::fs::read_to_string(repo_root().join("deploy/deployment.yaml")).unwrap();
    let dep: Value = serde_norway::from_str(&text).unwrap();
    let probe = &dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"];
    let secs = probe["timeoutSeconds"]
        .as_u64()
        .unwrap_or_else(|| panic!("no timeoutSeconds: {probe}"));
    Duration::from_secs(secs)
}

/// One probe as the kubelet makes it: connect, GET /healthz, read the
/// answer, all within `limit`. The time it took, or what went wrong.
fn probe(port: u16, limit: Duration) -> Result<Duration, String> {
    let t0 = Instant::now();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    let left = |t0: Instant| {
        limit
            .saturating_sub(t0.elapsed())
            .max(Duration::from_millis(1))
    };
    s.set_write_timeout(Some(left(t0))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    s.set_read_timeout(Some(left(t0))).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw)
        .map_err(|e| format!("read after {:?}: {e}", t0.elapsed()))?;
    let took = t0.elapsed();
    if !raw.starts_with("HTTP/1.1 200") || !raw.ends_with("ok\n") {
        return Err(format!("answer {raw:?}"));
    }
    if took > limit {
        return Err(format!("answered after {took:?}"));
    }
    Ok(took)
}

/// Probes every 250 ms for `period`; each must answer within `limit`.
fn probes_pass(port: u16, limit: Duration, period: Duration, what: &str) -> Duration {
    let t0 = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut n = 0;
    while n == 0 || t0.elapsed() < period {
        match probe(port, limit) {
            Ok(took) => slowest = slowest.max(took),
            Err(e) => panic!("{what}: probe {n} failed: {e}"),
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("{what}: {n} probes, the slowest {slowest:?}");
    slowest
}

/// The server's open connections on `port` (its side of each, ESTABLISHED
/// in /proc/net/tcp): what the server keeps, seen from outside.
fn server_connections(port: u16) -> usize {
    let local = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&local) && f[3] == "01"
        })
        .count()
}

/// Until the server has closed every connection on `port` by itself (no
/// other traffic meanwhile).
fn until_closed(port: u16, what: &str) -> Duration {
    let t0 = Instant::now();
    while server_connections(port) > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{what}: the server still keeps {} connections",
            server_connections(port)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{what}: closed by the server after {:?}", t0.elapsed());
    t0.elapsed()
}

/// A connection that pipelines requests until its socket blocks, then
/// never reads.
fn greedy(port: u16) -> TcpStream {
    let mut s = connect(port);
    s.set_nonblocking(true).unwrap();
    let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        match s.write(&request) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                if s.write(&request).is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    s
}

/// A slowloris connection that is not opened again once closed.
fn trickling(port: u16, n: usize, period: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut conns: Vec<TcpStream> = (0..n).map(|_| connect(port)).collect();
        for c in &mut conns {
            let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ");
        }
        let t0 = Instant::now();
        while t0.elapsed() < period {
            for c in conns.iter_mut() {
                let _ = c.write_all(b"a");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

/// A connection from 127.0.0.2: another client than the probes (as another
/// pod than the kubelet).
fn connect(port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .unwrap();
    s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    s.into()
}

/// `n` slowloris connections: a request line, then one header byte per
/// connection every 200 ms, never the blank line; a connection the server
/// closes is opened again. Until `stop`.
fn slowloris(port: u16, n: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let open = |port| {
            let mut s = connect(port);
            s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ");
            s
        };
        let mut conns: Vec<TcpStream> = (0..n).map(|_| open(port)).collect();
        let mut reopened = 0;
        while !stop.load(Ordering::SeqCst) {
            for c in conns.iter_mut() {
                if c.write_all(b"a").is_err() {
                    *c = open(port);
                    reopened += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        reopened
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_port_cannot_be_starved() {
    let ns = TestNamespace::for_current_test().await;
    let limit = probe_timeout();
    let port = free_port();
    let mut plugin = ns.plugin();
    let plugin = plugin
        .args(["-n", ns.name(), "--all", "--yes", "-o", "json"])
        .args(["--watch", "--interval", "1h"])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .spawn();
    poll_until("/healthz to answer", Duration::from_secs(30), || async {
        probe(port, limit).map(|_| ())
    })
    .await;

    tokio::task::spawn_blocking(move || {
        // Idle connections, fewer than the server keeps: closed in time.
        let idle: Vec<TcpStream> = (0..10).map(|_| connect(port)).collect();
        until_closed(port, "10 idle connections");
        drop(idle);
        // More than it keeps: a probe still gets in at once.
        let idle: Vec<TcpStream> = (0..40).map(|_| connect(port)).collect();
        probes_pass(port, limit, Duration::from_secs(2), "40 idle connections");
        drop(idle);
        until_closed(port, "the 40 idle connections");

        // Slowloris, a few: closed while they still trickle.
        let few = trickling(port, 10, Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(500));
        until_closed(port, "10 slowloris connections");
        let _ = few.join();
        // 200 at once, opened again when closed.
        let stop = Arc::new(AtomicBool::new(false));
        let attack = slowloris(port, 200, stop.clone());
        probes_pass(
            port,
            limit,
            Duration::from_secs(8),
            "200 slowloris connections",
        );
        stop.store(true, Ordering::SeqCst);
        assert!(attack.join().unwrap() > 0);
        until_closed(port, "the 200 slowloris connections");

        // Pipelining that never reads, a few: closed though nothing else comes.
        let few_greedy: Vec<TcpStream> = (0..10).map(|_| greedy(port)).collect();
        until_closed(port, "10 pipelining connections");
        drop(few_greedy);
        // As many as it keeps: probes during and after the traffic stopped.
        let all: Vec<TcpStream> = (0..32).map(|_| greedy(port)).collect();
        probes_pass(
            port,
            limit,
            Duration::from_secs(6),
            "32 pipelining connections",
        );
        drop(all);
    })
    .await
    .unwrap();

    plugin.signal("TERM");
    // (The limit counts from the start.)
    let done = plugin.wait(Duration::from_secs(180));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
}

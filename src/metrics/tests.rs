use super::*;

fn ok() -> (Outcome, String) {
    (Outcome::Success, String::new())
}

fn bad(outcome: Outcome) -> (Outcome, String) {
    (outcome, "exit code 1".into())
}

#[test]
fn polling_readiness_needs_a_success_within_two_intervals() {
    let m = Metrics::new(Readiness::Polling(Duration::from_millis(50)));
    assert!(m.ready().unwrap_err().contains("no cycle"));
    m.observe(
        Trigger::Cycle,
        bad(Outcome::Error),
        Duration::from_millis(5),
        None,
    );
    assert!(m.ready().is_err());
    m.observe(Trigger::Cycle, ok(), Duration::from_millis(5), None);
    assert!(m.ready().is_ok());
    std::thread::sleep(Duration::from_millis(120));
    assert!(m.ready().unwrap_err().contains("two intervals"));
}

#[test]
fn watching_readiness_needs_the_watch_and_the_last_reconcile() {
    let m = Metrics::new(Readiness::Watching);
    assert!(m.ready().unwrap_err().contains("no reconcile"));
    m.observe(Trigger::Start, ok(), Duration::from_millis(5), None);
    assert!(m.ready().is_ok());
    // However long ago: an idle watch reconciles rarely.
    m.watch_down(Some("pods: cannot list pods: connection refused".into()));
    let why = m.ready().unwrap_err();
    assert!(
        why.contains("not established") && why.contains("connection refused"),
        "{why}"
    );
    m.watch_down(None);
    assert!(m.ready().is_ok());
    m.observe(
        Trigger::Change,
        bad(Outcome::Failed),
        Duration::from_millis(5),
        None,
    );
    assert!(m
        .ready()
        .unwrap_err()
        .contains("last reconcile failed: exit code 1"));
    m.observe(Trigger::Retry, ok(), Duration::from_millis(5), None);
    assert!(m.ready().is_ok());
}

#[test]
fn the_exposition_is_openmetrics_with_every_family() {
    let m = Metrics::new(Readiness::Watching);
    m.observe(Trigger::Start, ok(), Duration::from_millis(300), None);
    m.observe(
        Trigger::Timer,
        bad(Outcome::Failed),
        Duration::from_millis(300),
        None,
    );
    m.restarted("pods", "error");
    m.restarted("pods", "interval");
    m.restarted("pods", "interval");
    m.cached("pods", 42);
    let text = m.encode();
    assert!(text.ends_with("# EOF\n"), "{text}");
    // Families without samples yet (objects, quota ratios, events) are left out.
    for line in [
        "# TYPE crucible_clean_cycles counter",
        "crucible_clean_cycles_total{outcome=\"success\",trigger=\"start\"} 1",
        "crucible_clean_cycles_total{outcome=\"failed\",trigger=\"timer\"} 1",
        "crucible_clean_cycle_duration_seconds_count 2",
        "# TYPE crucible_clean_last_success_timestamp_seconds gauge",
        "# TYPE crucible_clean_watch_restarts counter",
        "crucible_clean_watch_restarts_total{resource=\"pods\",reason=\"error\"} 1",
        "crucible_clean_watch_restarts_total{resource=\"pods\",reason=\"interval\"} 2",
        "# TYPE crucible_clean_cache_objects gauge",
        "crucible_clean_cache_objects{resource=\"pods\"} 42",
    ] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }
}

#[test]
fn only_get_and_head_on_three_paths() {
    use http::{Method, StatusCode};
    let m = Metrics::new(Readiness::Polling(Duration::from_secs(60)));
    let status = |method: Method, path: &str| server::respond(&m, &method, path).status();
    assert_eq!(status(Method::GET, "/healthz"), StatusCode::OK);
    assert_eq!(
        status(Method::GET, "/readyz"),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(status(Method::GET, "/metrics"), StatusCode::OK);
    assert_eq!(status(Method::HEAD, "/metrics"), StatusCode::OK);
    assert_eq!(status(Method::GET, "/"), StatusCode::NOT_FOUND);
    assert_eq!(
        status(Method::POST, "/metrics"),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

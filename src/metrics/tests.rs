use super::*;

#[test]
fn readiness_needs_a_success_within_two_intervals() {
    let m = Metrics::new(Duration::from_millis(50));
    assert!(m.ready().unwrap_err().contains("no cycle"));
    m.observe(Outcome::Error, Duration::from_millis(5), None);
    assert!(m.ready().is_err());
    m.observe(Outcome::Success, Duration::from_millis(5), None);
    assert!(m.ready().is_ok());
    std::thread::sleep(Duration::from_millis(120));
    assert!(m.ready().unwrap_err().contains("two intervals"));
}

#[test]
fn the_exposition_is_openmetrics_with_every_family() {
    let m = Metrics::new(Duration::from_secs(60));
    m.observe(Outcome::Success, Duration::from_millis(300), None);
    m.observe(Outcome::Failed, Duration::from_millis(300), None);
    let text = m.encode();
    assert!(text.ends_with("# EOF\n"), "{text}");
    // Families without samples yet (objects, quota ratios, events) are left out.
    for line in [
        "# TYPE crucible_clean_cycles counter",
        "crucible_clean_cycles_total{outcome=\"success\"} 1",
        "crucible_clean_cycles_total{outcome=\"failed\"} 1",
        "crucible_clean_cycle_duration_seconds_count 2",
        "# TYPE crucible_clean_last_success_timestamp_seconds gauge",
    ] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }
}

#[test]
fn only_get_and_head_on_three_paths() {
    use http::{Method, StatusCode};
    let m = Metrics::new(Duration::from_secs(60));
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

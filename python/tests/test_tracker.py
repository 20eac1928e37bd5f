"""The seed's interceptor pattern: evaluations created through a tracked requests.Session
or httpx.Client are cleaned at the end of their test, whatever their labels."""

from __future__ import annotations

import kube

INNER = '''
import requests
import httpx
import crucible_clean
import kube


def record(name):
    with open("made.txt", "a") as f:
        f.write(name + "\\n")


def test_requests_session(ns, api_url, crucible_tracker):
    s = crucible_tracker.track(requests.Session())
    tracked = s.post(api_url + "/eval", json={}).json()["eval_id"]
    # Not an evaluation URL (the default pattern: paths containing /eval): not tracked.
    other = s.post(api_url + "/submit", json={}).json()["eval_id"]
    kube.wait_jobs_finished(ns, ["evaluation-job-" + tracked, "evaluation-job-" + other])
    assert crucible_tracker.eval_ids == [tracked]
    record("tracked " + tracked)
    record("untracked " + other)


def test_httpx_client(ns, api_url, crucible_tracker):
    with httpx.Client() as c:
        crucible_tracker.track(c)
        e = c.post(api_url + "/eval", json={"outcome": "fail"}).json()["eval_id"]
    kube.wait_jobs_finished(ns, ["evaluation-job-" + e])
    assert crucible_tracker.eval_ids == [e]
    record("tracked " + e)


def test_module_level_track(ns, api_url, crucible_tracker):
    # crucible_clean.track() records on the test running when the answer arrives.
    s = crucible_clean.track(requests.Session())
    e = s.post(api_url + "/eval", json={"labels": {"test-id": "someone-else"}}).json()["eval_id"]
    kube.wait_jobs_finished(ns, ["evaluation-job-" + e])
    assert crucible_tracker.eval_ids == [e]
    record("tracked " + e)
'''


def test_tracked_evaluations_are_cleaned_at_test_end(inner, ns, eval_api):
    decoy = kube.create_job(ns, kube.new_id("decoy"))
    kube.wait_jobs_finished(ns, [decoy])
    inner.pytester.makepyfile(test_tracked=INNER)
    r = inner.run("--auto-cleanup", *inner.scope(), "--cleanup-report=report.json")
    r.assert_outcomes(passed=3)
    assert r.ret == 0, r.stdout.str()
    rows = [line.split() for line in (inner.pytester.path / "made.txt").read_text().splitlines()]
    tracked = [f"evaluation-job-{e}" for kind, e in rows if kind == "tracked"]
    untracked = [f"evaluation-job-{e}" for kind, e in rows if kind == "untracked"]
    assert len(tracked) == 3 and len(untracked) == 1
    jobs = kube.present(ns, "jobs")
    for j in tracked:
        assert j not in jobs
        assert kube.present(ns, "pods", f"batch.kubernetes.io/job-name={j}") == []
    for j in [*untracked, decoy]:
        assert j in jobs
        assert len(kube.present(ns, "pods", f"batch.kubernetes.io/job-name={j}")) == 1
    doc = inner.report(inner.pytester.path / "report.json")
    calls = [c for c in doc["calls"] if c["purpose"] == "tracked"]
    # One call per test, for exactly the ids that test tracked, at level all.
    assert len(calls) == 3
    for c, job in zip(calls, tracked):
        eval_id = job[len("evaluation-job-"):]
        assert c["argv"].count("--eval-id") == 1 and eval_id in c["argv"]
        assert c["argv"][c["argv"].index("--level") + 1] == "all"
        assert c["exitCode"] == 0
    assert "tracked evaluations" in r.stdout.str()


def test_tracker_records_only_successful_matching_posts():
    """The tracker alone (no cluster): pattern, method, status and body decide."""
    from crucible_clean import Tracker

    t = Tracker(r"/v1/evaluations$")
    t.observe("POST", "http://api/v1/evaluations", 201, lambda: {"eval_id": "a1"})
    t.observe("GET", "http://api/v1/evaluations", 200, lambda: {"eval_id": "a2"})
    t.observe("POST", "http://api/v1/evaluations", 500, lambda: {"eval_id": "a3"})
    t.observe("POST", "http://api/v1/evaluations/x", 200, lambda: {"eval_id": "a4"})
    t.observe("POST", "http://api/v1/evaluations", 200, lambda: {"other": 1})
    t.observe("POST", "http://api/v1/evaluations", 200, lambda: {"eval_id": "not valid!"})
    t.observe("POST", "http://api/v1/evaluations?x=1", 200, lambda: {"eval_id": 42})
    assert t.eval_ids == ["a1", "42"]
    assert t.ignored == ["not valid!"]

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


STREAMS = '''
import asyncio
import httpx
import requests
import pytest
import crucible_clean
import stub_http


@pytest.fixture
def server():
    s = stub_http.Server()
    yield s
    s.close()


def first_event(server, client, method, path):
    with client.stream(method, server.url + path) as r:
        lines = r.iter_lines()
        line = next(lines)
        server.read_first()
        rest = list(lines)
    return line, rest


def test_httpx_streams_reach_the_caller_unread(server, crucible_tracker):
    """A GET, and a POST to an evaluation path answered by a stream: the tracker reads
    neither; the caller gets the first event while the server still holds the rest."""
    with httpx.Client() as c:
        crucible_tracker.track(c)
        assert first_event(server, c, "GET", "/events")[0] == "data: first"
        assert first_event(server, c, "POST", "/eval/stream")[0] == "data: first"
        e = c.post(server.url + "/eval").json()["eval_id"]
    assert server.waited(2) == [True, True]
    assert crucible_tracker.eval_ids == [e]


def test_requests_streams_reach_the_caller_unread(server, crucible_tracker):
    s = crucible_tracker.track(requests.Session())
    with s.get(server.url + "/events", stream=True) as r:
        assert next(r.iter_lines(chunk_size=1)) == b"data: first"
        server.read_first()
    with s.post(server.url + "/eval/stream", stream=True) as r:
        assert next(r.iter_lines(chunk_size=1)) == b"data: first"
        server.read_first()
    assert server.waited(2) == [True, True]
    assert crucible_tracker.eval_ids == []


def test_post_303_get_is_tracked(server, crucible_tracker):
    """POST /eval/redirect answers 303 to /results/<id>, whose GET carries the eval_id."""
    s = crucible_tracker.track(requests.Session())
    a = s.post(server.url + "/eval/redirect").json()["eval_id"]
    with httpx.Client(follow_redirects=True) as c:
        crucible_tracker.track(c)
        b = c.post(server.url + "/eval/redirect").json()["eval_id"]
    # A GET of the same kind of URL without a POST before it is not tracked.
    s.get(server.url + "/results/notmine")
    assert crucible_tracker.eval_ids == [a, b] == server.ids


def test_async_httpx_streams_reach_the_caller_unread(server, crucible_tracker):
    async def main():
        async with httpx.AsyncClient() as c:
            crucible_tracker.track(c)
            async with c.stream("GET", server.url + "/events") as r:
                async for line in r.aiter_lines():
                    assert line == "data: first"
                    server.read_first()
                    break
            return (await c.post(server.url + "/eval")).json()["eval_id"]

    e = asyncio.run(main())
    assert server.waited(1) == [True]
    assert crucible_tracker.eval_ids == [e]
'''


def test_the_tracker_reads_only_matching_json_answers(pytester):
    """No cluster: streams, GETs and non-JSON answers reach the caller unread (an endless
    stream would never return otherwise); a POST answered by a 303 is tracked."""
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {kube.__file__.rsplit('/', 1)[0]!r})\n")
    pytester.makepyfile(test_streams=STREAMS)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", timeout=300)
    r.assert_outcomes(passed=4)


LONG_ID = '''
import requests
import stub_http


def test_long_id(crucible_tracker):
    server = stub_http.Server()
    try:
        s = crucible_tracker.track(requests.Session())
        s.post(server.url + "/eval/long")
    finally:
        server.close()
    assert crucible_tracker.eval_ids == []
'''


def test_an_eval_id_that_cannot_be_a_label_is_reported(inner, ns):
    inner.pytester.makepyfile(test_long=LONG_ID)
    r = inner.run("--auto-cleanup", *inner.scope(), "--cleanup-report=report.json")
    r.assert_outcomes(passed=1)
    out = r.stdout.str()
    assert "note: the tracker ignored 1 eval_id value that cannot be a label value" in out, out
    assert "'" + "l" * 69 + "..." not in out and "l" * 63 in out
    doc = inner.report(inner.pytester.path / "report.json")
    assert doc["ignoredEvalIds"] == [{"where": "test_long.py::test_long_id", "value": "l" * 70}]

"""With the plugins large suites use: pytest-rerunfailures (a rerun is the same test:
the failed attempt's objects are cleaned before the rerun, or kept with keep-failed)
and pytest-timeout (a test that times out still gets its cleanup)."""

from __future__ import annotations

import kube

RERUN = '''
import os
import pytest
import kube


@pytest.mark.flaky(reruns=1)
def test_flaky(ns, crucible_labels, crucible_test_id):
    attempt = len(open("attempts.txt").read().split()) // 2 if os.path.exists("attempts.txt") else 0
    j = kube.create_job(ns, kube.new_id(f"a{attempt}"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    with open("attempts.txt", "a") as f:
        f.write(f"{j} {crucible_test_id}\\n")
    if attempt == 0:
        assert False, "the first attempt fails"
    with open("jobs-at-rerun.txt", "w") as f:
        f.write(" ".join(kube.present(ns, "jobs")))
'''


def _attempts(inner) -> list:
    return [ln.split() for ln in (inner.pytester.path / "attempts.txt").read_text().splitlines()]


def test_a_rerun_starts_after_the_failed_attempts_objects_are_cleaned(inner, ns):
    inner.pytester.makepyfile(test_flaky=RERUN)
    r = inner.run("--auto-cleanup", "--cleanup-level=all", *inner.scope(),
                  "--cleanup-report=report.json")
    outcomes = r.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("rerun") == 1, outcomes
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    (first, tid1), (second, tid2) = _attempts(inner)
    assert tid1 == tid2  # the same test, the same id
    at_rerun = (inner.pytester.path / "jobs-at-rerun.txt").read_text().split()
    assert first not in at_rerun and second in at_rerun
    assert first not in kube.present(ns, "jobs") and second not in kube.present(ns, "jobs")
    doc = inner.report(inner.pytester.path / "report.json")
    per_test = [c for c in doc["calls"] if c["purpose"] == "per-test"]
    assert len(per_test) == 2 and {c["testId"] for c in per_test} == {tid1}


def test_with_keep_failed_the_failed_attempts_objects_stay(inner, ns):
    """--cleanup-keep-failed: the failed attempt's job is marked kept before the rerun;
    the rerun's cleanup, by the same test id, leaves it and takes the rerun's own."""
    inner.pytester.makepyfile(test_flaky=RERUN)
    r = inner.run("--auto-cleanup", "--cleanup-level=all", "--cleanup-keep-failed=1h",
                  *inner.scope(), "--cleanup-report=report.json")
    out = r.stdout.str()
    outcomes = r.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("rerun") == 1, outcomes
    (first, _), (second, _) = _attempts(inner)
    assert first in (inner.pytester.path / "jobs-at-rerun.txt").read_text().split()
    jobs = kube.present(ns, "jobs")
    assert first in jobs and second not in jobs, out
    ann = kube.get_json("job", first, "-n", ns)["metadata"]["annotations"]
    assert ann["crucible-clean/keep-reason"] == "test_flaky.py::test_flaky"
    assert "kept for debugging:" in out and f"job/{first}" in out


TIMEOUT = '''
import time
import pytest
import kube


@pytest.mark.timeout(20)
def test_times_out(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("to"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    with open("made.txt", "w") as f:
        f.write(j)
    time.sleep(300)
'''


def test_a_test_that_times_out_is_cleaned_up(inner, ns):
    """pytest-timeout's default method (a signal) fails the test: its teardown and
    cleanup follow. Its thread method ends the process: under pytest-xdist the worker
    dies and the controller reaps the test's objects at session end."""
    inner.pytester.makepyfile(test_timeout=TIMEOUT)
    for extra in ([], ["-n", "2", "--timeout-method=thread"]):
        r = inner.run(*extra, "--auto-cleanup", "--cleanup-level=all", *inner.scope(),
                      "--cleanup-report=report.json")
        out = r.stdout.str() + r.stderr.str()
        r.assert_outcomes(failed=1)
        # The signal method fails the test; the thread method ends the worker.
        assert ("Failed: Timeout" in out if not extra else
                "crashed while running 'test_timeout.py::test_times_out'" in out), out
        job = (inner.pytester.path / "made.txt").read_text()
        assert job not in kube.present(ns, "jobs"), (extra, out)
        doc = inner.report(inner.pytester.path / "report.json")
        purpose = "per-test" if not extra else "worker-crash"
        (call,) = [c for c in doc["calls"] if c["purpose"] == purpose]
        assert call["nodeid"] == "test_timeout.py::test_times_out" and call["exitCode"] == 0
        assert any(it["name"] == job and it["result"] in ("deleted", "gone")
                   for it in call["report"]["items"]), (extra, call)

"""pytest-xdist: one run across the workers (one run id, one guard, the session-level
cleanups once, a summary that counts every worker's calls), a worker that dies, a
controller that is SIGKILLed, and the plugin without pytest-xdist at all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import kube
from test_guard import guard_pids, other_run, run_objects

SIX = '''
import json, os
import pytest
import kube


@pytest.mark.parametrize("i", range(6))
def test_each_makes_a_job(i, ns, crucible_labels, crucible_run_id, crucible_test_id):
    j = kube.create_job(ns, kube.new_id(f"x{i}"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    leases = kube.names(ns, "leases")
    with open(f"made-{i}.json", "w") as f:
        json.dump({"job": j, "run": crucible_run_id, "test": crucible_test_id,
                   "worker": os.environ.get("PYTEST_XDIST_WORKER"), "leases": leases}, f)
'''


def _made(inner, n: int) -> list:
    return [json.loads((inner.pytester.path / f"made-{i}.json").read_text()) for i in range(n)]


def test_six_tests_on_three_workers_are_one_run(inner, ns):
    """-n 3: one run id and one guard (one Lease) across the workers; every test's job
    cleaned and no decoy; the age cleanup runs twice and the run sweep once, on the
    controller; the summary and the report count every worker's calls."""
    decoys = other_run(ns, "otherrun")
    inner.pytester.makepyfile(test_six=SIX)
    r = inner.run("-n", "3", "--auto-cleanup", "--cleanup-level=all", "--cleanup-old",
                  *inner.scope(), "--cleanup-report=report.json")
    out = r.stdout.str()
    r.assert_outcomes(passed=6)
    assert r.ret == 0, out + r.stderr.str()
    made = _made(inner, 6)
    doc = inner.report(inner.pytester.path / "report.json")
    run = doc["runId"]
    assert {m["run"] for m in made} == {run}
    assert len({m["worker"] for m in made}) >= 2, made  # really spread over workers
    assert all(m["worker"] and m["worker"].startswith("gw") for m in made)
    assert all(m["leases"] == [f"crucible-clean-run-{run}"] for m in made), made
    for m in made:
        assert m["job"] not in kube.present(ns, "jobs")
        assert kube.present(ns, "pods", f"batch.kubernetes.io/job-name={m['job']}") == []
    for kind, name in decoys:
        assert name in kube.present(ns, kind), (kind, name)
    purposes = [c["purpose"] for c in doc["calls"]]
    assert purposes.count("per-test") == 6
    assert purposes.count("age") == 2 and purposes.count("run-sweep") == 1, purposes
    assert purposes.count("leftover") == 1
    per_test = [c for c in doc["calls"] if c["purpose"] == "per-test"]
    assert sorted(c["testId"] for c in per_test) == sorted(m["test"] for m in made)
    assert all(c["exitCode"] == 0 for c in per_test)
    assert doc["guard"]["released"] is True
    cleaned_jobs = sum(1 for c in per_test for it in c["report"]["items"]
                       if it["kind"] == "Job" and it["result"] in ("deleted", "gone"))
    assert cleaned_jobs == 6
    assert doc["totals"]["calls"] == 10 and doc["totals"]["cleaned"] >= 6
    # The controller's summary: every call, and what the workers cleaned.
    assert f"run {run} in namespace {ns}: 10 calls of kubectl-crucible-clean, 0 failed" in out
    assert "cleaned: nothing" not in out
    line = [ln for ln in out.splitlines() if "after each test, by its test id" in ln]
    assert len(line) == 1 and "6 jobs" in line[0], out
    assert guard_pids(run) == [] and kube.names(ns, "leases") == []


CRASH = '''
import os
import kube


def test_a_first(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("first"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    with open("first.txt", "w") as f:
        f.write(j)


def test_b_dies(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("dies"), crucible_labels, outcome="run")
    kube.wait_job_running(ns, j)
    with open("dies.txt", "w") as f:
        f.write(j)
    os._exit(1)  # the worker dies in the middle of the test


def test_c_after(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("after"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    with open("after.txt", "w") as f:
        f.write(j)
'''


def test_a_worker_that_dies_is_reaped_at_the_end(inner, ns):
    """A worker dies in a test that left a running job; xdist restarts it. At session end
    the controller reaps that test's objects, running ones too, and the summary still
    counts what the worker cleaned before it died."""
    inner.pytester.makepyfile(test_crash=CRASH)
    # One worker: the three tests run on it in order, the replacement runs the third.
    r = inner.run("-n", "1", "--auto-cleanup", "--cleanup-level=all",
                  *inner.scope(), "--cleanup-report=report.json")
    out = r.stdout.str()
    r.assert_outcomes(passed=2, failed=1)
    assert "crashed" in out, out
    first, dies, after = (
        (inner.pytester.path / f"{n}.txt").read_text() for n in ("first", "dies", "after"))
    # The first test's cleanup came from the worker that died later.
    for j in (first, dies, after):
        assert j not in kube.present(ns, "jobs"), j
        assert kube.present(ns, "pods", f"batch.kubernetes.io/job-name={j}") == []
    doc = inner.report(inner.pytester.path / "report.json")
    (reap,) = [c for c in doc["calls"] if c["purpose"] == "worker-crash"]
    assert reap["nodeid"] == "test_crash.py::test_b_dies"
    assert "--include-running" in reap["argv"] and reap["exitCode"] == 0
    assert any(it["name"] == dies and it["result"] in ("deleted", "gone")
               for it in reap["report"]["items"])
    per_test = {c["nodeid"] for c in doc["calls"] if c["purpose"] == "per-test"}
    assert per_test == {"test_crash.py::test_a_first", "test_crash.py::test_c_after"}
    assert "a test whose xdist worker died" in out


HANG = '''
import os, time
import pytest
import kube


@pytest.mark.parametrize("i", range(3))
def test_hangs(i, ns, crucible_labels, crucible_run_id):
    j = kube.create_job(ns, kube.new_id(f"h{i}"), crucible_labels, outcome="run")
    kube.wait_job_running(ns, j)
    with open(f"ready-{i}.tmp", "w") as f:
        f.write(crucible_run_id + " " + str(os.getpid()))
    os.replace(f"ready-{i}.tmp", f"ready-{i}")
    time.sleep(600)
'''


def test_sigkill_of_the_controller_reaps_every_workers_objects(inner, ns):
    """The controller holds the only guard: SIGKILL it while three workers each have a
    running job, and the guard deletes all of them (and no decoy)."""
    decoys = other_run(ns, "otherrun")
    inner.pytester.makepyfile(test_hang=HANG)
    log = open(inner.pytester.path / "pytest.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "3", "--auto-cleanup",
         *inner.scope()], cwd=inner.pytester.path, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True)
    workers = []
    try:
        def ready():
            if proc.poll() is not None:
                raise AssertionError((inner.pytester.path / "pytest.log").read_text())
            return all((inner.pytester.path / f"ready-{i}").exists() for i in range(3))

        kube.until("three workers with a running job each", ready, timeout=180)
        lines = [(inner.pytester.path / f"ready-{i}").read_text().split() for i in range(3)]
        runs = {run for run, _ in lines}
        workers = [int(pid) for _, pid in lines]
        assert len(runs) == 1 and len(set(workers)) == 3, lines
        (run,) = runs
        assert len(guard_pids(run)) == 1
        assert len(run_objects(ns, run)) == 6  # three jobs, three running pods
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kube.until("the run's objects deleted", lambda: run_objects(ns, run) == [], timeout=90)
        kube.until("the guard to exit", lambda: guard_pids(run) == [], timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for kind, name in decoys:
        assert name in kube.present(ns, kind), (kind, name)


# A stand-in for a Python without pytest-xdist: importing it fails, as it would.
NO_XDIST = "raise ImportError('pytest-xdist is not installed here')\n"


def test_without_pytest_xdist(inner, ns, tmp_path, monkeypatch):
    """pytest-xdist disabled and its package hidden: the plugin neither needs nor imports
    it, and a single process cleans as before."""
    hidden = tmp_path / "hide"
    (hidden / "xdist").mkdir(parents=True)
    (hidden / "xdist" / "__init__.py").write_text(NO_XDIST)
    env_path = os.environ.get("PYTHONPATH", "")
    inner.pytester.makepyfile(test_two='''
import sys
import kube


def test_one(ns, crucible_labels):
    assert "xdist" not in sys.modules or sys.modules["xdist"] is None
    j = kube.create_job(ns, kube.new_id("nx"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    open("made.txt", "a").write(j + "\\n")


def test_two(ns, crucible_labels):
    test_one(ns, crucible_labels)
''')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(hidden), env_path) if p))
    r = inner.run("-p", "no:xdist", "-p", "no:xdist.looponfail", "--auto-cleanup",
                  "--cleanup-level=all", *inner.scope())
    out = r.stdout.str()
    r.assert_outcomes(passed=2)
    assert r.ret == 0, out + r.stderr.str()
    for j in (inner.pytester.path / "made.txt").read_text().split():
        assert j not in kube.present(ns, "jobs")
    assert "0 failed" in out and "Traceback" not in out
    # -n is pytest-xdist's: without it, it is not an option at all.
    r = inner.run("-p", "no:xdist", "-p", "no:xdist.looponfail", "-n", "2")
    assert r.ret == 4


BAD_MARKER = '''
import pytest


def test_fine():
    pass


@pytest.mark.crucible_clean(level="everything")
def test_bad():
    pass
'''


def test_a_bad_marker_on_a_worker_is_the_sessions_usage_error(inner):
    """A worker that finds a bad marker runs no test and the controller exits 4 with
    the error naming the test, as a single process does."""
    inner.pytester.makepyfile(test_marked=BAD_MARKER)
    for extra in (["-n", "2"], []):
        r = inner.run(*extra, "--auto-cleanup", *inner.scope())
        err = r.stderr.str()
        assert r.ret == 4, (extra, r.stdout.str(), err)
        assert "test_marked.py::test_bad" in err and "level must be one of" in err, (extra, err)
        assert "INTERNALERROR" not in r.stdout.str() + err
        assert "passed" not in r.stdout.str()
    # The controller's guard was released all the same.
    assert kube.names(inner.ns, "leases") == []

"""The plugin under real-world failure: a silent API server, another plugin's hooks that
raise, and Ctrl-C in the middle of a cleanup call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import kube
from test_guard import guard_pids

from crucible_clean.binary import Call
from crucible_clean.reach import RECHECK_SECONDS, Reach

TESTS = 50


def test_a_silent_server_costs_one_timeout_not_one_per_test(inner, silent_kubeconfig, figure):
    """The guard finds the cluster unreachable at session start (one request timeout);
    every test still runs, their cleanups and the session-end sweeps are skipped and
    reported, and the failure is explained once."""
    inner.pytester.makepyfile(test_many=f'''
import pytest

@pytest.mark.parametrize("i", range({TESTS}))
def test_runs(i, crucible_labels):
    assert crucible_labels["test-id"]
''')
    t0 = time.monotonic()
    r = inner.run("--auto-cleanup", f"--cleanup-namespace={inner.ns}",
                  f"--cleanup-kubeconfig={silent_kubeconfig}", "--cleanup-report=report.json",
                  timeout=900)
    took = time.monotonic() - t0
    figure(f"{TESTS} tests, --auto-cleanup, silent API server: pytest's wall time",
           f"{took:.1f} s")
    r.assert_outcomes(passed=TESTS)
    assert r.ret == 1
    # The bound, generous for a loaded machine: one request timeout (about
    # 30 s), not one per test (25 minutes).
    assert took < 120, f"{TESTS} tests took {took:.1f} s"
    out = r.stdout.str()
    assert "Traceback" not in out + r.stderr.str()
    # The failure, once: the guard's; then one line for everything skipped after it.
    assert out.count("the guard exited (status 4) before holding its Lease") == 1, out
    assert out.count("failures:") == 1
    skipped = TESTS + 2  # each test's call, then the run sweep and the leftover preview
    assert f"{skipped} later cleanup calls were skipped" in out, out
    assert "cleanup failed, so the session fails (exit status 1)" in out
    doc = inner.report(inner.pytester.path / "report.json")
    assert doc["totals"]["skippedCalls"] == skipped and doc["totals"]["failedCalls"] == 0
    assert all(c["exitCode"] is None and c["skipped"] for c in doc["calls"])
    assert doc["guard"]["exitCode"] == 4 and not doc["guard"]["ready"]


def test_reach_skips_after_an_unusable_answer_and_tries_again_later():
    """The rule alone: exit 4 (not an RBAC refusal) or no answer stops the calls; one
    goes through again after RECHECK_SECONDS; any answer resumes them."""
    now = [1000.0]
    r = Reach(clock=lambda: now[0])

    def call(code, error):
        return Call(phase="test", purpose="per-test", level="pods", argv=[], exit_code=code,
                    error=error)

    assert r.allows()
    r.observe(call(4, "exit 4: error: forbidden: you may not delete pods"))
    assert r.allows()  # RBAC: one verb may be refused, others not
    r.observe(call(1, "exit 1: error: some deletions failed"))
    assert r.allows()
    r.observe(call(4, "exit 4: error: cluster unreachable: deadline has elapsed"))
    assert not r.allows() and "deadline" in r.reason
    now[0] += RECHECK_SECONDS - 1
    assert not r.allows()
    now[0] += 1
    assert r.allows()
    r.observe(call(None, "no answer within 600s; the call was stopped"))
    assert not r.allows() and "deadline" in r.reason  # the first reason stays
    now[0] += RECHECK_SECONDS
    r.observe(call(0, None))
    assert r.allows() and r.reason is None


RAISES_AT_SESSIONFINISH = '''

def pytest_sessionfinish(session):
    raise RuntimeError("another plugin fails at session end")
'''

RAISES_AT_SESSIONSTART = '''

@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    # After the plugin's guard started (its Lease names the run): a running job of
    # the run, then a failure.
    (lease,) = kube.names(NS, "leases")
    run = lease[len("crucible-clean-run-"):]
    job = kube.create_job(NS, kube.new_id("live"), {"crucible-clean/run": run}, outcome="run")
    kube.wait_job_running(NS, job)
    with open("made.txt", "w") as f:
        f.write(run + " " + job)
    raise RuntimeError("another plugin fails at session start")
'''

RUNNING_JOB = '''
import kube
from conftest import record


def test_starts_an_evaluation(ns, crucible_labels, crucible_run_id):
    job = kube.create_job(ns, kube.new_id("live"), crucible_labels, outcome="run")
    kube.wait_job_running(ns, job)
    record(crucible_run_id, job)
'''


def _append_conftest(inner, text: str) -> None:
    path = inner.pytester.path / "conftest.py"
    path.write_text(path.read_text() + text)


def _run_and_job(inner) -> tuple:
    run, job = (inner.pytester.path / "made.txt").read_text().split()
    return run, job


def test_another_plugins_sessionfinish_raising_releases_the_guard(inner, ns):
    """A conftest's pytest_sessionfinish raises: the plugin still ends the session (its
    hook wraps every other), so the guard is released and the run's running job stays."""
    _append_conftest(inner, RAISES_AT_SESSIONFINISH)
    inner.pytester.makepyfile(test_live=RUNNING_JOB)
    r = inner.run("--auto-cleanup", *inner.scope())
    assert "another plugin fails at session end" in r.stdout.str() + r.stderr.str()
    run, job = _run_and_job(inner)
    out = r.stdout.str()
    assert f"guard: Lease crucible-clean-run-{run} held during the session, released" in out, out
    kube.until("the guard to exit", lambda: guard_pids(run) == [], timeout=30)
    assert kube.names(ns, "leases") == []
    # Released, not reaped: the running job and its pod are untouched.
    assert job in kube.present(ns, "jobs")
    assert len(kube.present(ns, "pods", f"batch.kubernetes.io/job-name={job}")) == 1


def test_another_plugins_sessionstart_raising_releases_the_guard(inner, ns):
    """pytest_sessionfinish never comes when a later pytest_sessionstart raises:
    pytest_unconfigure releases the guard."""
    _append_conftest(inner, RAISES_AT_SESSIONSTART)
    inner.pytester.makepyfile(test_x="def test_x():\n    pass\n")
    r = inner.run("--auto-cleanup", *inner.scope())
    assert "another plugin fails at session start" in r.stdout.str() + r.stderr.str()
    run, job = _run_and_job(inner)
    kube.until("the guard to exit", lambda: guard_pids(run) == [], timeout=30)
    assert kube.names(ns, "leases") == []
    assert job in kube.present(ns, "jobs")
    assert len(kube.present(ns, "pods", f"batch.kubernetes.io/job-name={job}")) == 1


def _binary_calls(kubeconfig: str) -> list:
    """PIDs of kubectl-crucible-clean processes using ``kubeconfig``."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if any(a.endswith(b"kubectl-crucible-clean") for a in argv[:1]) and \
                    kubeconfig.encode() in argv:
                pids.append(int(d))
    return pids


def test_a_call_cut_by_ctrl_c_is_in_the_summary(inner, silent_kubeconfig):
    """Ctrl-C while the call after a test waits on a silent server: the call is in the
    summary as interrupted."""
    inner.pytester.makepyfile(test_x="def test_x():\n    pass\n")
    log = open(inner.pytester.path / "pytest.log", "wb")
    # No guard (dry run) and no session-end call (only the age strategy, per test).
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cleanup-strategy=age",
         "--cleanup-dry-run", f"--cleanup-namespace={inner.ns}",
         f"--cleanup-kubeconfig={silent_kubeconfig}"],
        cwd=inner.pytester.path, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    try:
        kube.until("the cleanup call after the test", lambda: _binary_calls(silent_kubeconfig),
                   timeout=60, every=0.1)
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C at a terminal: the whole group
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = (inner.pytester.path / "pytest.log").read_text()
    assert proc.returncode == 2, out  # pytest: interrupted
    assert "= crucible-clean =" in out, out
    assert "run " in out and "1 call of kubectl-crucible-clean, 1 failed" in out, out
    assert "test_x.py::test_x (after each test, strategy check): interrupted (Ctrl-C)" in out, out

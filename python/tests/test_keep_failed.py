"""--cleanup-keep-failed: a failed test's objects are marked kept for a while
(crucible-clean/keep-until) instead of cleaned; the binary honours the mark in every
path until it expires; the summary lists them with the command that deletes them."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import time

import kube
from crucible_clean import find_binary
from test_guard import guard_pids, start_inner, wait_run_id

KEEP_UNTIL = "crucible-clean/keep-until"
KEEP_REASON = "crucible-clean/keep-reason"
WINDOW = 60  # seconds: long enough for the checks below on a loaded machine

WINDOWED = '''
import os
import time
import pytest
import kube
from conftest import record


def test_a_passes(ns, crucible_labels):
    p = kube.create_pod(ns, "pass-" + kube.new_id(""), crucible_labels)
    kube.wait_pods_phase(ns, [p])
    record("pass", p)


def test_b_fails(ns, crucible_labels):
    p = kube.create_pod(ns, "fail-" + kube.new_id(""), crucible_labels)
    kube.wait_pods_phase(ns, [p])
    record("fail", p)
    assert False, "this test fails"


@pytest.fixture
def breaks_in_teardown():
    yield
    raise RuntimeError("teardown fails")


def test_c_teardown_fails(ns, crucible_labels, breaks_in_teardown):
    p = kube.create_pod(ns, "tdown-" + kube.new_id(""), crucible_labels)
    kube.wait_pods_phase(ns, [p])
    record("teardown", p)


def test_d_hangs(crucible_run_id):
    with open("run-id.txt.tmp", "w") as f:
        f.write(crucible_run_id)
    os.replace("run-id.txt.tmp", "run-id.txt")
    time.sleep(600)
'''


def _made(inner) -> dict:
    rows = [ln.split() for ln in (inner.pytester.path / "made.txt").read_text().splitlines()]
    return {k: v for k, v in rows}


def _until(ns: str, pod: str) -> datetime.datetime:
    meta = kube.get_json("pod", pod, "-n", ns)["metadata"]
    return datetime.datetime.fromisoformat(meta["annotations"][KEEP_UNTIL].replace("Z", "+00:00"))


def _run(binary: str, ns: str, kubeconfig: str, *args: str) -> dict:
    p = subprocess.run([binary, *args, "-n", ns, "--kubeconfig", kubeconfig, "-o", "json",
                        "--yes"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_a_failed_tests_pod_outlives_any_cleanup_inside_its_window(inner, ns, kubeconfig):
    """keep-failed for a minute, then guard and pytest killed: inside the window the
    failed tests' pods survive `--all --level all` and `--stale-runs` (their run is
    stale); the passing test's pod was cleaned after it; past the window --stale-runs
    deletes them."""
    binary = find_binary()
    proc = start_inner(inner, "--auto-cleanup", "--cleanup-level=all",
                       f"--cleanup-keep-failed={WINDOW}s", "--cleanup-lease-duration=3s",
                       source=WINDOWED)
    try:
        run = wait_run_id(inner, proc)
        (guard,) = guard_pids(run)
        os.kill(guard, signal.SIGKILL)  # first the guard, so that its run goes stale
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    made = _made(inner)
    kept = [made["fail"], made["teardown"]]
    assert made["pass"] not in kube.present(ns, "pods")
    assert kube.present(ns, "pods") == sorted(kept)
    until = min(_until(ns, p) for p in kept)
    for p in kept:
        meta = kube.get_json("pod", p, "-n", ns)["metadata"]
        assert meta["annotations"][KEEP_REASON].startswith("test_hang.py::test_")

    def inside() -> None:
        left = (until - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        assert left > 2, f"the {WINDOW}s window ran out before the checks (machine too slow)"

    inside()
    doc = _run(binary, ns, kubeconfig, "--all", "--level", "all")
    rows = {it["name"]: it for it in doc["items"]}
    assert all(rows[p]["action"] == "keep" and KEEP_UNTIL in rows[p]["reason"] for p in kept)
    assert kube.present(ns, "pods") == sorted(kept)
    kube.until("the run's Lease to expire", lambda: _lease_expired(ns, run), timeout=60)
    inside()
    _run(binary, ns, kubeconfig, "--stale-runs")
    assert kube.present(ns, "pods") == sorted(kept)
    inside()
    # Past the window: ordinary leftovers of a stale run.
    left = (until - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    time.sleep(max(0.0, left))
    kube.until("--stale-runs to delete them past their window",
               lambda: _run(binary, ns, kubeconfig, "--stale-runs") is not None
               and kube.present(ns, "pods") == [], timeout=WINDOW + 60, every=1)


def _lease_expired(ns: str, run: str) -> bool:
    lease = kube.get_json("lease", f"crucible-clean-run-{run}", "-n", ns)["spec"]
    renewed = datetime.datetime.fromisoformat(lease["renewTime"].replace("Z", "+00:00"))
    age = (datetime.datetime.now(datetime.timezone.utc) - renewed).total_seconds()
    return age > lease["leaseDurationSeconds"] + 1


SUMMARY = '''
import pytest
import kube
import requests
from conftest import record


@pytest.fixture(scope="module")
def shared(ns, crucible_module_labels):
    j = kube.create_job(ns, kube.new_id("shared"), crucible_module_labels)
    kube.wait_jobs_finished(ns, [j])
    record("shared", j)
    return j


def test_fails_with_a_tracked_evaluation(ns, api_url, crucible_labels, crucible_tracker, shared):
    api = crucible_tracker.track(requests.Session())
    eval_id = api.post(api_url + "/eval", json={}).json()["eval_id"]
    record("tracked", f"evaluation-job-{eval_id}")
    j = kube.create_job(ns, kube.new_id("f"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    record("failed", j)
    assert False


@pytest.mark.crucible_clean(keep_failed=False)
def test_fails_but_keeps_nothing(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("nk"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    record("notkept", j)
    assert False
'''


def test_the_summary_lists_what_was_kept_and_how_to_delete_it(inner, ns, eval_api):
    """With --cleanup-keep-failed (24h): the failed test's job, its tracked evaluation
    and its module's shared job are kept past the session end; a test marked
    keep_failed=False is cleaned. The summary and the report list each kept object with
    its test and the one command that deletes them; that command works."""
    inner.pytester.makepyfile(test_keep=SUMMARY)
    r = inner.run("--auto-cleanup", "--cleanup-level=all", "--cleanup-keep-failed",
                  *inner.scope(), "--cleanup-report=report.json")
    out = r.stdout.str()
    r.assert_outcomes(failed=2)
    made = _made(inner)
    jobs = kube.present(ns, "jobs")
    kept = [made["failed"], made["tracked"], made["shared"]]
    for j in kept:
        assert j in jobs, (j, out)
        ann = kube.get_json("job", j, "-n", ns)["metadata"]["annotations"]
        until = datetime.datetime.fromisoformat(ann[KEEP_UNTIL].replace("Z", "+00:00"))
        left = until - datetime.datetime.now(datetime.timezone.utc)
        assert datetime.timedelta(hours=23) < left <= datetime.timedelta(hours=24)
    assert made["notkept"] not in jobs
    assert "kept for debugging:" in out, out
    failing = "test_keep.py::test_fails_with_a_tracked_evaluation"
    line = [ln for ln in out.splitlines() if ln.strip().startswith(failing + ":")]
    assert len(line) == 1 and f"job/{made['failed']}" in line[0] and f"job/{made['tracked']}" in line[0]
    assert any(ln.strip().startswith("test_keep.py:") and f"job/{made['shared']}" in ln
               for ln in out.splitlines()), out
    doc = inner.report(inner.pytester.path / "report.json")
    names = {k["name"]: k for k in doc["keptFailed"]}
    for j in kept:
        assert j in names
    assert names[made["failed"]]["test"] == failing
    command = doc["deleteKeptCommand"]
    assert f"delete them now: {command}" in out
    assert command.startswith(f"kubectl delete -n {ns} --kubeconfig ")
    p = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    kube.until("the kept jobs deleted", lambda: not set(kept) & set(kube.present(ns, "jobs")))

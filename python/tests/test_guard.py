"""Crash-safe run reaping: the guard the plugin starts, SIGKILL of pytest, and
``--stale-runs`` after guard and pytest both died."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import kube
from crucible_clean import find_binary

# The run's objects must be gone within this long of the SIGKILL (the measured figure
# is printed in the "figures" section).
REAP_BOUND_SECONDS = 60

INNER = '''
import time
import kube


def test_hangs(ns, crucible_labels, crucible_run_id):
    finished = kube.create_job(ns, kube.new_id("fin"), crucible_labels)
    running = kube.create_job(ns, kube.new_id("run"), crucible_labels, outcome="run")
    bare = kube.create_pod(ns, "bare-" + kube.new_id(""), crucible_labels, finished=False)
    kube.wait_jobs_finished(ns, [finished])
    kube.wait_job_running(ns, running)
    with open("run-id.txt.tmp", "w") as f:
        f.write(crucible_run_id)
    import os
    os.replace("run-id.txt.tmp", "run-id.txt")
    time.sleep(600)
'''


def guard_pids(run_id: str) -> list:
    """PIDs of processes running ``kubectl-crucible-clean --guard RUN``."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"--guard" in argv and run_id.encode() in argv:
            pids.append(int(d))
    return pids


FORKS = '''
import ctypes
import multiprocessing
import os
import time
import kube


def sleep_long():
    time.sleep(600)


def test_forks_and_hangs(ns, crucible_labels, crucible_run_id):
    running = kube.create_job(ns, kube.new_id("run"), crucible_labels, outcome="run")
    kube.wait_job_running(ns, running)
    if HOW == "multiprocessing":
        # A worker forked by the test: it inherits every descriptor pytest has open.
        child = multiprocessing.get_context("fork").Process(target=sleep_long, daemon=True)
        child.start()
        pid = child.pid
    else:
        # fork(2) itself: Python's at-fork handlers do not run, the pipe stays open in
        # the child, and only --parent-pid lets the guard see pytest die.
        pid = ctypes.CDLL(None).fork()
        if pid == 0:
            time.sleep(600)
            os._exit(0)
    with open("child.pid", "w") as f:
        f.write(str(pid))
    with open("run-id.txt.tmp", "w") as f:
        f.write(crucible_run_id)
    os.replace("run-id.txt.tmp", "run-id.txt")
    time.sleep(600)
'''


def start_inner(inner, *args: str, source: str = INNER) -> subprocess.Popen:
    inner.pytester.makepyfile(test_hang=source)
    log = open(inner.pytester.path / "pytest.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, *inner.scope()],
        cwd=inner.pytester.path, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_run_id(inner, proc: subprocess.Popen) -> str:
    path = inner.pytester.path / "run-id.txt"

    def ready():
        if proc.poll() is not None:
            raise AssertionError("the pytest session ended early:\n" +
                                 (inner.pytester.path / "pytest.log").read_text())
        return path.exists()

    kube.until("the inner test to create its objects", ready, timeout=120)
    return path.read_text()


def other_run(ns: str, run: str) -> list:
    """Live objects of another run (labelled with its run id) and an unlabelled one."""
    labels = {"test-id": f"{run}-t", "crucible-clean/run": run}
    running = kube.create_job(ns, kube.new_id("o"), labels, outcome="run")
    finished = kube.create_job(ns, kube.new_id("of"), labels)
    bare = kube.create_pod(ns, "other-bare", labels, finished=False)
    unlabelled = kube.create_pod(ns, "unlabelled-running", finished=False)
    kube.wait_jobs_finished(ns, [finished])
    return [("jobs", running), ("jobs", finished), ("pods", bare), ("pods", unlabelled)]


def run_objects(ns: str, run: str) -> list:
    """The run's objects present and not terminating."""
    sel = f"crucible-clean/run={run}"
    return kube.present(ns, "jobs", sel) + kube.present(ns, "pods", sel)


def run_objects_stored(ns: str, run: str) -> list:
    """The run's objects still stored, terminating ones too."""
    sel = f"crucible-clean/run={run}"
    return kube.names(ns, "jobs", sel) + kube.names(ns, "pods", sel)


def test_sigkill_of_pytest_reaps_its_run(inner, ns, figure):
    decoys = other_run(ns, "otherrun")
    proc = start_inner(inner, "--auto-cleanup")
    try:
        run = wait_run_id(inner, proc)
        assert len(run_objects(ns, run)) == 5  # 2 jobs, 3 pods (one running)
        guards = guard_pids(run)
        assert len(guards) == 1
        assert kube.names(ns, "leases") == [f"crucible-clean-run-{run}"]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kube.until("the run's objects deleted", lambda: run_objects(ns, run) == [],
                   timeout=REAP_BOUND_SECONDS, every=0.1)
        deleted = time.monotonic() - t0
        kube.until("the run's objects gone", lambda: run_objects_stored(ns, run) == [],
                   timeout=REAP_BOUND_SECONDS, every=0.1)
        gone = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    figure("SIGKILL of pytest to its run's objects deleted (2 jobs, 3 pods, 2 running)",
           f"{deleted:.2f} s")
    figure("SIGKILL of pytest to its run's objects gone from the API", f"{gone:.2f} s")
    kube.until("the guard to exit", lambda: guard_pids(run) == [], timeout=30)
    kube.until("the Lease removed", lambda: kube.names(ns, "leases") == [], timeout=30)
    for kind, name in decoys:
        assert name in kube.present(ns, kind), (kind, name)


def test_guard_and_pytest_killed_then_stale_runs(inner, ns, kubeconfig, figure):
    binary = find_binary()
    decoys = other_run(ns, "liverun")
    # A run whose guard is alive: --stale-runs must never touch it.
    live = subprocess.Popen([binary, "--guard", "liverun", "-n", ns, "--kubeconfig", kubeconfig,
                             "--lease-duration", "60s"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    proc = start_inner(inner, "--auto-cleanup", "--cleanup-lease-duration=3s")
    try:
        assert select.select([live.stdout], [], [], 60)[0], "the live guard is not ready"
        assert live.stdout.readline().strip() == b"ready"
        run = wait_run_id(inner, proc)
        (guard,) = guard_pids(run)
        os.kill(guard, signal.SIGKILL)  # first the guard, so that nothing reaps the run
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = time.monotonic()
        kube.until("the guard gone", lambda: guard_pids(run) == [], timeout=30)
        assert len(run_objects(ns, run)) == 5
        lease = f"crucible-clean-run-{run}"
        assert lease in kube.names(ns, "leases")

        def stale_runs():
            p = subprocess.run([binary, "--stale-runs", "-n", ns, "--kubeconfig", kubeconfig,
                                "-o", "json", "--yes"], capture_output=True, text=True,
                               timeout=120)
            assert p.returncode == 0, p.stderr
            return run_objects(ns, run) == []

        # Until the Lease expires (3 s after its last renewal) the run is live; after,
        # --stale-runs cleans exactly that run.
        kube.until("--stale-runs to reap the expired run", stale_runs, timeout=60, every=1)
        figure("guard and pytest killed to --stale-runs reaping (lease 3s, polled each 1s)",
               f"{time.monotonic() - killed_at:.2f} s")
        assert lease not in kube.names(ns, "leases")
        assert "crucible-clean-run-liverun" in kube.names(ns, "leases")
        for kind, name in decoys:
            assert name in kube.present(ns, kind), (kind, name)
        live.stdin.write(b"release\n")
        live.stdin.close()
        assert live.wait(timeout=60) == 0
        assert "crucible-clean-run-liverun" not in kube.names(ns, "leases")
        for kind, name in decoys:
            assert name in kube.present(ns, kind), (kind, name)
    finally:
        for p in (proc, live):
            if p.poll() is None:
                p.kill()
                p.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _sigkill_with_a_forked_child(inner, ns, figure, how: str) -> None:
    proc = start_inner(inner, "--auto-cleanup", source=FORKS.replace("HOW", repr(how)))
    child = None
    try:
        run = wait_run_id(inner, proc)
        child = int((inner.pytester.path / "child.pid").read_text())
        assert _alive(child)
        assert len(run_objects(ns, run)) == 2  # the running job and its pod
        t0 = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Within the Lease's duration (30 s), with the child still alive.
        kube.until("the run's objects deleted", lambda: run_objects(ns, run) == [],
                   timeout=30, every=0.1)
        took = time.monotonic() - t0
        assert _alive(child), "the forked child is still alive"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
    figure(f"SIGKILL of pytest with a live child ({how}) to its running job deleted",
           f"{took:.2f} s")
    kube.until("the guard to exit", lambda: guard_pids(run) == [], timeout=30)
    kube.until("the Lease removed", lambda: kube.names(ns, "leases") == [], timeout=30)


def test_sigkill_with_a_live_multiprocessing_child_reaps_the_run(inner, ns, figure):
    _sigkill_with_a_forked_child(inner, ns, figure, "multiprocessing")


def test_sigkill_with_a_raw_fork_child_holding_the_pipe_reaps_the_run(inner, ns, figure):
    _sigkill_with_a_forked_child(inner, ns, figure, "fork(2)")


def test_forked_children_let_go_of_the_guards_pipe():
    """No cluster: a guard (here a shell that says ready and reads its input to the end)
    sees the end of its input when pytest closes the pipe, though a child forked by
    pytest meanwhile is alive."""
    from crucible_clean.guard import Guard

    g = Guard("unused", "r", [], None)
    g.argv = ["sh", "-c", "echo ready; cat >/dev/null"]
    assert g.start(), g.error
    pid = os.fork()
    if pid == 0:  # the child lives on, as a test's worker would
        try:
            time.sleep(60)
        finally:
            os._exit(0)
    try:
        g.proc.stdin.close()
        assert g.proc.wait(timeout=30) == 0  # the guard saw the end of its input
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if g.proc.poll() is None:
            g.proc.kill()
        os.unlink(g.log_path)

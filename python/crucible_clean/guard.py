"""The run's guard: ``kubectl-crucible-clean --guard RUN --parent-pid <pytest>`` held open
by pytest.

The guard holds and renews the Lease ``crucible-clean-run-<RUN>`` and reads its
stdin, a pipe from pytest. ``release`` at session end lets it go without
cleaning; end of file — pytest died, even by SIGKILL, and the kernel closed the
pipe — makes it delete every object labelled ``crucible-clean/run=RUN``. A child
forked by a test would keep that pipe open after pytest died: forked children
close their copy at once (``os.register_at_fork``), and the guard also reaps when
its parent, pytest's PID, is gone (``--parent-pid``). It runs in a session of its
own, so Ctrl-C at the terminal does not reach it, and writes to a log file, not to
a pipe pytest would have to drain.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import weakref
from typing import List, Optional

from .reach import unusable

READY_TIMEOUT_SECONDS = 60
RELEASE_TIMEOUT_SECONDS = 60

# The guards this process started and holds the pipe of.
_guards: "weakref.WeakSet[Guard]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """In a forked child: let go of every guard's pipe, so that only pytest holds it."""
    for g in list(_guards):
        g.let_go_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Guard:
    def __init__(self, binary: str, run_id: str, scope_args: List[str],
                 lease_duration: Optional[str]) -> None:
        self.run_id = run_id
        # -o json: a reaped run's report in the log is one JSON document after "ready".
        self.argv = [binary, "--guard", run_id, "-o", "json", *scope_args]
        if os.name == "posix":
            # The guard's parent is this process: its end reaps the run too.
            self.argv += ["--parent-pid", str(os.getpid())]
        if lease_duration:
            self.argv += ["--lease-duration", lease_duration]
        self.log_path: Optional[str]
        fd, self.log_path = tempfile.mkstemp(prefix=f"crucible-clean-guard-{run_id}-", suffix=".log")
        os.close(fd)
        self.proc: Optional[subprocess.Popen] = None
        self.error: Optional[str] = None
        self.ready = False
        self.released = False
        self.exit_code: Optional[int] = None
        self.timed_out = False
        self.owner = os.getpid()

    @property
    def lease(self) -> str:
        return f"crucible-clean-run-{self.run_id}"

    def _log_tail(self) -> str:
        if self.log_path is None:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        errors = [ln for ln in lines if ln.startswith("error:")]
        return (errors or [ln for ln in lines if ln.strip()] or [""])[-1]

    def start(self) -> bool:
        """Starts the guard and waits until it holds the Lease (``ready`` on its stdout)."""
        try:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as e:
            self.error = f"cannot start the guard: {e}"
            return False
        _guards.add(self)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                if b"ready" in f.read().splitlines():
                    self.ready = True
                    return True
            rc = self.proc.poll()
            if rc is not None:
                self.exit_code = rc
                self.error = f"the guard exited (status {rc}) before holding its Lease: {self._log_tail()}"
                return False
            time.sleep(0.05)
        self.error = f"the guard was not ready within {READY_TIMEOUT_SECONDS}s (log {self.log_path})"
        self.timed_out = True
        self._stop()
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cluster_unusable(self) -> bool:
        """The guard could not start because the cluster does not answer (or the
        kubeconfig cannot be used): every call would fail the same way."""
        return self.timed_out or (not self.ready and self.exit_code is not None
                                  and unusable(self.exit_code, self.error or ""))

    def let_go_in_child(self) -> None:
        """In a forked child: point the pipe's descriptor at /dev/null. The file object
        stays valid (nothing is closed twice) but no longer keeps the pipe open."""
        if self.proc is None or self.proc.stdin is None or self.owner == os.getpid():
            return
        try:
            fd = self.proc.stdin.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd, inheritable=False)
            finally:
                os.close(null)
        except (OSError, ValueError):
            pass

    def release(self) -> bool:
        """Tells the guard the session ended normally; it removes the Lease and exits."""
        if self.proc is None or not self.ready or self.owner != os.getpid():
            return False
        rc = self.proc.poll()
        if rc is not None:
            self.exit_code = rc
            self.error = f"the guard had exited during the session (status {rc}): {self._log_tail()}"
            return False
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"release\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
        except OSError as e:
            self.error = f"cannot reach the guard: {e}"
        try:
            self.exit_code = self.proc.wait(timeout=RELEASE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.error = f"the guard did not exit within {RELEASE_TIMEOUT_SECONDS}s of release"
            self._stop()
            return False
        if self.exit_code != 0:
            self.error = f"the guard exited with status {self.exit_code}: {self._log_tail()}"
            return False
        self.released = self.error is None
        if self.released:
            try:  # kept only when something went wrong
                os.unlink(self.log_path)
            except OSError:
                pass
            self.log_path = None
        return self.released

    def _stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def to_json(self) -> dict:
        return {
            "lease": self.lease,
            "argv": self.argv,
            "ready": self.ready,
            "released": self.released,
            "exitCode": self.exit_code,
            "error": self.error,
            "log": self.log_path,
        }

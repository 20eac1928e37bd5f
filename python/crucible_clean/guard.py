"""The run's guard: ``kubectl-crucible-clean --guard RUN`` held open by pytest.

The guard holds and renews the Lease ``crucible-clean-run-<RUN>`` and reads its
stdin, a pipe from pytest. ``release`` at session end lets it go without
cleaning; end of file — pytest died, even by SIGKILL, and the kernel closed the
pipe — makes it delete every object labelled ``crucible-clean/run=RUN``. It runs
in a session of its own, so Ctrl-C at the terminal does not reach it, and writes
to a log file, not to a pipe pytest would have to drain.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from typing import List, Optional

READY_TIMEOUT_SECONDS = 60
RELEASE_TIMEOUT_SECONDS = 60


class Guard:
    def __init__(self, binary: str, run_id: str, scope_args: List[str],
                 lease_duration: Optional[str]) -> None:
        self.run_id = run_id
        # -o json: a reaped run's report in the log is one JSON document after "ready".
        self.argv = [binary, "--guard", run_id, "-o", "json", *scope_args]
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
        self._stop()
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def release(self) -> bool:
        """Tells the guard the session ended normally; it removes the Lease and exits."""
        if self.proc is None or not self.ready:
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

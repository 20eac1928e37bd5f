"""Finding and running the ``kubectl-crucible-clean`` binary in its scripted mode.

Every call is ``-o json --yes`` and its ``CleanupReport`` is parsed; a call that
fails is returned as a :class:`Call` with ``error`` set, never raised.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

BINARY_NAME = "kubectl-crucible-clean" + (".exe" if os.name == "nt" else "")
ENV_OVERRIDE = "CRUCIBLE_CLEAN_BIN"
# A call longer than this is stopped and reported as failed (the binary's own
# request timeouts end a stuck call long before).
CALL_TIMEOUT_SECONDS = 600


class BinaryNotFound(Exception):
    """The binary is neither where ``CRUCIBLE_CLEAN_BIN`` says, nor installed, nor on PATH."""


def _script_dirs() -> List[str]:
    dirs = []
    for d in (
        sysconfig.get_path("scripts"),
        os.path.dirname(sys.executable),
        sysconfig.get_path("scripts", f"{os.name}_user"),
    ):
        if d and d not in dirs:
            dirs.append(d)
    return dirs


def find_binary() -> str:
    """The path of ``kubectl-crucible-clean``: ``$CRUCIBLE_CLEAN_BIN``, else the
    scripts directory of this Python (where ``pip install`` put it), else PATH."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise BinaryNotFound(
            f"{ENV_OVERRIDE}={override} is not an executable file; "
            f"point it at kubectl-crucible-clean or unset it"
        )
    for d in _script_dirs():
        p = os.path.join(d, BINARY_NAME)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    found = shutil.which(BINARY_NAME)
    if found:
        return found
    raise BinaryNotFound(
        f"{BINARY_NAME} not found in {', '.join(_script_dirs())} or on PATH; "
        f"install the crucible-clean package into this environment "
        f"(pip install ./python from the repository), or set {ENV_OVERRIDE} to the binary"
    )


@dataclass
class Call:
    """One run of the binary and what came of it."""

    phase: str  # sessionstart | test | scope | sessionfinish
    # per-test | per-scope | tracked | strategy | age | fallback | run-sweep | leftover
    # | keep-failed | worker-crash
    purpose: str
    level: str
    argv: List[str]
    nodeid: Optional[str] = None
    test_id: Optional[str] = None
    exit_code: Optional[int] = None
    report: Optional[Dict[str, Any]] = None
    stderr: str = ""
    error: Optional[str] = None
    seconds: float = 0.0
    notes: List[str] = field(default_factory=list)
    # Why the call was not run (the cluster was found unreachable before it).
    skipped: Optional[str] = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def to_json(self) -> Dict[str, Any]:
        return {
            "phase": self.phase,
            "purpose": self.purpose,
            "level": self.level,
            "nodeid": self.nodeid,
            "testId": self.test_id,
            "argv": self.argv,
            "exitCode": self.exit_code,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "skipped": self.skipped,
            "notes": self.notes,
            "stderr": self.stderr,
            "report": self.report,
        }

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Call":
        """The call :meth:`to_json` describes (a pytest-xdist worker's, on the controller)."""
        return cls(
            phase=d.get("phase", "?"),
            purpose=d.get("purpose", "?"),
            level=d.get("level", "?"),
            argv=list(d.get("argv") or []),
            nodeid=d.get("nodeid"),
            test_id=d.get("testId"),
            exit_code=d.get("exitCode"),
            report=d.get("report"),
            stderr=d.get("stderr") or "",
            error=d.get("error"),
            seconds=float(d.get("seconds") or 0.0),
            notes=list(d.get("notes") or []),
            skipped=d.get("skipped"),
        )


def _first_error_line(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith("error:"):
            return line
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run(binary: str, args: List[str], **call_fields: Any) -> Call:
    """Runs ``binary -o json --yes ARGS`` and returns the parsed call."""
    argv = [binary, *args, "-o", "json", "--yes"]
    call = Call(argv=argv, **call_fields)
    env = dict(os.environ)
    # The binary reads TEST_LABEL_ID only with --test-id-from-env, which the
    # plugin never passes; drop it anyway so no call depends on it.
    env.pop("TEST_LABEL_ID", None)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            timeout=CALL_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        call.seconds = time.monotonic() - t0
        call.error = f"no answer within {CALL_TIMEOUT_SECONDS}s; the call was stopped"
        return call
    except OSError as e:
        call.seconds = time.monotonic() - t0
        call.error = f"cannot run {binary}: {e}"
        return call
    call.seconds = time.monotonic() - t0
    call.exit_code = proc.returncode
    call.stderr = proc.stderr.decode("utf-8", "replace")
    call.notes = [
        ln[len("note:") :].strip() for ln in call.stderr.splitlines() if ln.startswith("note:")
    ]
    out = proc.stdout.decode("utf-8", "replace").strip()
    if out:
        try:
            call.report = json.loads(out)
        except ValueError:
            call.report = None
    if proc.returncode != 0:
        why = _first_error_line(call.stderr) or "no message"
        call.error = f"exit {proc.returncode}: {why}"
    elif call.report is None:
        call.error = "exit 0 but no JSON report on stdout"
    return call

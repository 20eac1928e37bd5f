"""pytest-xdist: the controller owns the run, the workers do the per-test work.

Under ``-n N`` every worker is a pytest process of its own with its own
``pytest_configure`` and session. The controller (the process that was started, which
runs no test) makes the run id and gives it to the workers through ``workerinput``,
holds the only guard, and runs the session-level cleanups once (``--cleanup-old`` at
start and end, the tracked evaluations left over, the run sweep, the fallback). The
workers call the binary after each test and after each module, class or fixture scope.

What a worker did reaches the controller through a file per worker in a directory the
controller made: one JSON object a line, written as it happens, so a worker that
crashes (and that xdist restarts) has left what it did before. The controller reads
them at session end: the summary and the report count every worker's calls, and a test
that started but never finished its cleanup (its worker died) is reaped then.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Set

import pytest

SINGLE = "single"
CONTROLLER = "controller"
WORKER = "worker"

# The key of the controller's data in workerinput.
KEY = "crucible_clean"


def role(config: pytest.Config) -> str:
    """single (no xdist, or -n 0), controller (xdist distributes the tests) or worker."""
    if hasattr(config, "workerinput"):
        return WORKER
    dist = getattr(config.option, "dist", "no")
    if dist not in (None, "no") and getattr(config.option, "tx", None):
        return CONTROLLER
    return SINGLE


def worker_input(config: pytest.Config) -> Dict[str, Any]:
    """What the controller gave this worker (empty when the controller runs no
    crucible-clean, which cannot happen with the plugin installed)."""
    data = getattr(config, "workerinput", {}).get(KEY)
    return dict(data) if isinstance(data, dict) else {}


def worker_id(config: pytest.Config) -> str:
    return str(getattr(config, "workerinput", {}).get("workerid", "gw?"))


def make_dir(run_id: str) -> str:
    return tempfile.mkdtemp(prefix=f"crucible-clean-{run_id}-workers-")


def remove_dir(path: Optional[str]) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


class Records:
    """A worker's records: ``<dir>/<worker id>.jsonl``, appended a line at a time (a
    restarted worker has the same id and appends to the same file)."""

    def __init__(self, directory: str, wid: str) -> None:
        self.path = os.path.join(directory, f"{wid}.jsonl")
        self.error: Optional[str] = None

    def write(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"t": kind, **fields}, separators=(",", ":")) + "\n"
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
        except OSError as e:  # the controller reports what it could not read
            self.error = f"cannot write {self.path}: {e.strerror or e}"


def _lines(directory: str) -> Iterator[Dict[str, Any]]:
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".jsonl"))
    except OSError:
        return
    for name in names:
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a worker that died writing it
                    if isinstance(rec, dict):
                        rec["worker"] = name[: -len(".jsonl")]
                        yield rec
        except OSError:
            continue


@dataclass
class Merged:
    """Every worker's records, put together."""

    calls: List[Dict[str, Any]] = field(default_factory=list)
    pending_evals: List[str] = field(default_factory=list)
    ignored: List[tuple] = field(default_factory=list)
    levels: Set[str] = field(default_factory=set)
    usage_errors: List[str] = field(default_factory=list)
    # Tests whose worker died before their cleanup was done: nodeid -> their start record.
    unfinished: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    workers: Set[str] = field(default_factory=set)


def read(directory: Optional[str]) -> Merged:
    m = Merged()
    if not directory:
        return m
    open_tests: Dict[tuple, Dict[str, Any]] = {}
    for rec in _lines(directory):
        t = rec.get("t")
        w = rec["worker"]
        m.workers.add(w)
        if t == "call" and isinstance(rec.get("call"), dict):
            m.calls.append(rec["call"])
        elif t == "start":
            open_tests[(w, rec.get("nodeid"))] = rec
        elif t == "done":
            open_tests.pop((w, rec.get("nodeid")), None)
        elif t == "state":
            m.pending_evals.extend(e for e in rec.get("pending", []) if e not in m.pending_evals)
            m.ignored.extend((where, v) for where, v in rec.get("ignored", []))
            m.levels.update(rec.get("levels", []))
        elif t == "usage":
            m.usage_errors.append(str(rec.get("message")))
    for (_, nodeid), rec in open_tests.items():
        m.unfinished[str(nodeid)] = rec
    return m

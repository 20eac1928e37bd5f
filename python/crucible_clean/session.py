"""One pytest session's cleanup: the calls of the binary (per test, per fixture scope,
at session start and end), the guard, and what the summary and report are made of.

``finish`` concludes the session exactly once, whichever hook gets there first, and
releases the guard whatever else fails: a guard that is not released takes pytest's
exit for a crash and deletes the run's running jobs.

Under pytest-xdist (``workers``) the same State plays one of two roles: a worker's
does the per-test work and records it; the controller's holds the guard, runs the
session-level cleanups once and counts every worker's calls.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from . import binary, ids, options, summary, tracker, workers
from .guard import Guard
from .markers import LEVEL_LABEL, Rules
from .reach import Reach


# The longest keep reason the binary takes (--keep-reason); a longer node id is cut.
MAX_REASON = 1024


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Context:
    """What cleanup knows of a test, or of a fixture scope wider than a test."""

    nodeid: str
    test_id: Optional[str]
    run_id: str
    tracker: tracker.Tracker
    # Its markers' rules (None: the session's).
    rules: Optional[Rules] = None

    @property
    def labels(self) -> Dict[str, str]:
        out = {ids.RUN_LABEL: self.run_id}
        if self.test_id is not None:
            out = {ids.TEST_LABEL: self.test_id, **out}
        if self.rules is not None:
            out.update(self.rules.labels())
        return out


@dataclass
class State:
    settings: options.Settings
    run_id: str
    binary: Optional[str] = None
    guard: Optional[Guard] = None
    calls: List[binary.Call] = field(default_factory=list)
    # Tracked evaluations not (all) cleaned when their test ended: retried at session end.
    pending_evals: List[str] = field(default_factory=list)
    # (where, value): eval_id values the trackers could not use (not label values).
    ignored: List[Tuple[str, str]] = field(default_factory=list)
    reach: Reach = field(default_factory=Reach)
    started_at: str = field(default_factory=now)
    report_error: Optional[str] = None
    fails_session: bool = False
    failed: bool = False
    started: bool = False
    finished: bool = False
    summary_shown: bool = False
    # single, controller or worker (pytest-xdist).
    role: str = workers.SINGLE
    # A worker's records; the controller's directory of them.
    records: Optional[workers.Records] = None
    records_dir: Optional[str] = None
    # Node ids of the tests that failed (setup, call or teardown): their module's and
    # class's shared objects are kept too, with keep-failed.
    failed_tests: List[str] = field(default_factory=list)
    # Levels that markers gave tests (their objects carry LEVEL_LABEL).
    marked_levels: List[str] = field(default_factory=list)
    # Usage errors found by the workers (a bad marker): the controller's exit status.
    usage_errors: List[str] = field(default_factory=list)
    # What of pending_evals / ignored / marked_levels a worker has recorded already.
    _synced: Tuple[int, int, int] = (0, 0, 0)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def rules(self) -> Rules:
        s = self.settings
        return Rules(level=s.level, strategy=s.strategy, keep_failed=s.keep_failed)

    def record(self, kind: str, **fields) -> None:
        """On a worker: tell the controller (nothing elsewhere)."""
        if self.records is not None:
            self.records.write(kind, **fields)

    def sync(self) -> None:
        """On a worker: record what was added to the session's state since last time."""
        if self.records is None:
            return
        p, i, lv = self._synced
        if (p, i, lv) == (len(self.pending_evals), len(self.ignored), len(self.marked_levels)):
            return
        self.record("state", pending=self.pending_evals[p:], ignored=self.ignored[i:],
                    levels=self.marked_levels[lv:])
        self._synced = (len(self.pending_evals), len(self.ignored), len(self.marked_levels))

    # -- calls -----------------------------------------------------------------------------
    def call(self, args: List[str], phase: str, purpose: str, level: str,
             ctx: Optional[Context] = None, preview: bool = False) -> binary.Call:
        s = self.settings
        full = [*args, *s.scope_args()]
        if s.dry_run or preview:
            full.append("--dry-run")
        fields = dict(phase=phase, purpose=purpose, level=level,
                      nodeid=ctx.nodeid if ctx else None, test_id=ctx.test_id if ctx else None)
        if not self.reach.allows():
            c = binary.Call(argv=full, skipped=self.reach.reason, **fields)
            self._add(c)
            return c
        try:
            assert self.binary is not None
            c = binary.run(self.binary, full, **fields)
        except KeyboardInterrupt:
            # Ctrl-C: the call is cut; it still belongs in the summary.
            self._add(binary.Call(argv=full, error="interrupted (Ctrl-C)", **fields))
            raise
        except Exception as e:  # never a traceback from cleanup: report it
            c = binary.Call(argv=full, error=f"{type(e).__name__}: {e}", **fields)
        except BaseException as e:
            # pytest-timeout's Failed (or another plugin's exit) cut the call: report it
            # and let it go on.
            self._add(binary.Call(argv=full, error=f"interrupted ({type(e).__name__}: {e})",
                                  **fields))
            raise
        self.reach.observe(c)
        self._add(c)
        return c

    def _add(self, c: binary.Call) -> None:
        self.calls.append(c)
        self.record("call", call=c.to_json())

    def watermarks(self) -> List[str]:
        s = self.settings
        args = []
        if s.high is not None:
            args += ["--high-watermark", str(s.high)]
        if s.low is not None:
            args += ["--low-watermark", str(s.low)]
        return args

    def age_cleanup(self, phase: str) -> None:
        s = self.settings
        if s.cleanup_old and s.level != "none":
            self.call(["--strategy", "age", "--older-than", s.age, "--level", s.level],
                      phase, "age", s.level)

    def tracked(self, eval_ids: List[str], phase: str, ctx: Optional[Context]) -> None:
        if not eval_ids:
            return
        args = ["--level", "all"]
        for e in eval_ids:
            args += ["--eval-id", e]
        c = self.call(args, phase, "tracked", "all", ctx)
        if c.report is not None and phase in ("test", "scope"):
            for item in c.report.get("items", []) or []:
                e = item.get("evalId")
                if item.get("result") == "skipped" and e in eval_ids and e not in self.pending_evals:
                    self.pending_evals.append(e)
        elif c.report is None and phase in ("test", "scope"):
            # Not cleaned (the call failed or was skipped): once more at session end.
            self.pending_evals.extend(e for e in eval_ids if e not in self.pending_evals)

    def keep(self, ctx: Context, duration: str, eval_ids: List[str], phase: str) -> None:
        """keep-failed: mark the objects of ``ctx`` (its test id, and the evaluations it
        tracked) kept for ``duration``, running ones too, instead of cleaning them. Two
        calls: the binary's ids narrow together (test id AND evaluation id)."""
        reason = ctx.nodeid if len(ctx.nodeid) <= MAX_REASON else ctx.nodeid[: MAX_REASON - 3] + "..."
        mark = ["--mark-kept-for", duration, "--keep-reason", reason]
        if ctx.test_id is not None:
            self.call([*mark, "--test-id", ctx.test_id], phase, "keep-failed", "all", ctx)
        if eval_ids:
            args = list(mark)
            for e in eval_ids:
                args += ["--eval-id", e]
            self.call(args, phase, "keep-failed", "all", ctx)

    def note_ignored(self, where: str, t: tracker.Tracker) -> None:
        self.ignored.extend((where, v) for v in t.ignored)

    # -- the lifecycle ---------------------------------------------------------------------
    def start(self, unreachable: Optional[str] = None) -> None:
        """Session start: the guard (not in a dry run, not on a worker), then the age
        cleanup. ``unreachable``: why the controller found the cluster unusable."""
        s = self.settings
        self.started = True
        if unreachable:
            self.reach.failed(unreachable)
        if self.role == workers.WORKER:
            return
        if not s.dry_run:
            assert self.binary is not None
            self.guard = Guard(self.binary, self.run_id, s.scope_args(), s.lease_duration)
            if not self.guard.start() and self.guard.cluster_unusable():
                self.reach.failed(f"the guard: {self.guard.error}")
        self.age_cleanup("sessionstart")

    def test_started(self, ctx: Context) -> None:
        r = ctx.rules or self.rules
        if r.level_marked and r.level not in self.marked_levels:
            self.marked_levels.append(r.level)
        self.record("start", nodeid=ctx.nodeid, test_id=ctx.test_id, level=r.level,
                    keep_failed=r.keep_failed)

    def after_test(self, ctx: Context, failed: bool) -> None:
        """A test (one attempt of it, with pytest-rerunfailures) ended: clean what it
        made, or with keep-failed and a failure, mark it kept."""
        s = self.settings
        r = ctx.rules or self.rules
        self.note_ignored(ctx.nodeid, ctx.tracker)
        if failed and ctx.nodeid not in self.failed_tests:
            self.failed_tests.append(ctx.nodeid)
        keep = failed and r.keep_failed is not None
        if keep:
            self.keep(ctx, r.keep_failed, ctx.tracker.eval_ids, "test")
        else:
            self.tracked(ctx.tracker.eval_ids, "test", ctx)
        if r.level != "none":
            self._per_test(ctx, r, keep)
        self.sync()
        self.record("done", nodeid=ctx.nodeid)

    def _per_test(self, ctx: Context, r: Rules, keep: bool) -> None:
        assert ctx.test_id is not None
        lvl = ["--level", r.level]
        if r.strategy == "hybrid":
            # One call: the test's labels, the age rule and the watermark rule together
            # (what keep-failed marked is kept by the binary).
            self.call(["--strategy", "hybrid", "--test-id", ctx.test_id, "--older-than",
                       self.settings.age, *self.watermarks(), *lvl], "test", "per-test",
                      r.level, ctx)
            return
        if self.settings.per_test_label_for(r.level, r.strategy) and not keep:
            self.call(["--test-id", ctx.test_id, *lvl], "test", "per-test", r.level, ctx)
        if r.strategy == "age":
            self.call(["--strategy", "age", "--older-than", self.settings.age, *lvl],
                      "test", "strategy", r.level, ctx)
        elif r.strategy == "pressure":
            high = self.settings.high
            extra = ["--threshold", str(high)] if high is not None else []
            self.call(["--strategy", "pressure", *extra, *lvl], "test", "strategy", r.level, ctx)
        elif r.strategy == "watermark":
            self.call(["--strategy", "watermark", *self.watermarks(), *lvl],
                      "test", "strategy", r.level, ctx)

    def after_scope_labels(self, ctx: Context) -> None:
        """A module's or class's labels went out of use: clean what carries its test id,
        as after a test (finished objects; the run sweep takes the rest). With
        keep-failed, a failed test of the scope keeps them instead."""
        s = self.settings
        r = ctx.rules or self.rules
        if ctx.test_id is None:
            return
        prefix = ctx.nodeid + "::"
        failed = any(n.startswith(prefix) for n in self.failed_tests)
        if failed and r.keep_failed is not None:
            self.keep(ctx, r.keep_failed, [], "scope")
        elif s.per_test_label_for(r.level, r.strategy):
            self.call(["--test-id", ctx.test_id, "--level", r.level], "scope", "per-scope",
                      r.level, ctx)
        if r.level_marked and r.level not in self.marked_levels:
            self.marked_levels.append(r.level)
        self.sync()

    def after_fixture(self, ctx: Context) -> None:
        """A fixture wider than a test was torn down: clean what it tracked."""
        self.note_ignored(ctx.nodeid, ctx.tracker)
        self.tracked(ctx.tracker.eval_ids, "scope", ctx)
        self.sync()

    def _merge_workers(self) -> Dict[str, dict]:
        """The controller: every worker's calls and state. Returns the tests a worker
        died in."""
        m = workers.read(self.records_dir)
        self.calls.extend(binary.Call.from_json(c) for c in m.calls)
        self.pending_evals.extend(e for e in m.pending_evals if e not in self.pending_evals)
        self.ignored.extend(m.ignored)
        self.marked_levels.extend(lv for lv in sorted(m.levels) if lv not in self.marked_levels)
        self.usage_errors.extend(m.usage_errors)
        return m.unfinished

    def _reap_unfinished(self, unfinished: Dict[str, dict]) -> None:
        """Tests whose worker died during them (xdist restarts the worker): their
        objects, running ones too, as the guard would reap them; with keep-failed,
        marked kept instead."""
        for nodeid, rec in unfinished.items():
            test_id = rec.get("test_id")
            if not test_id:
                continue
            ctx = Context(nodeid=nodeid, test_id=test_id, run_id=self.run_id,
                          tracker=tracker.Tracker())
            if rec.get("keep_failed"):
                self.keep(ctx, str(rec["keep_failed"]), [], "sessionfinish")
                continue
            level = rec.get("level") or self.settings.level
            if level == "none":
                continue
            self.call(["--test-id", test_id, "--level", level, "--include-running"],
                      "sessionfinish", "worker-crash", level, ctx)

    def _run_sweeps(self) -> None:
        """What of the run finished after its test ended (per-test cleanup takes finished
        objects only). Objects whose test's marker gave a level are swept at that level
        (never at none)."""
        s = self.settings
        base = "app=evaluation"
        if not self.marked_levels:
            sweeps = [(s.level, [])]
        else:
            sweeps = [(s.level, ["-l", f"{base},!{LEVEL_LABEL}"])]
            sweeps += [(lv, ["-l", f"{base},{LEVEL_LABEL}={lv}"])
                       for lv in self.marked_levels if lv != "none"]
        for level, sel in sweeps:
            if level != "none" and s.per_test_label_for(level, s.strategy):
                self.call(["--run-id", self.run_id, "--level", level, *sel],
                          "sessionfinish", "run-sweep", level)
        if s.per_test_label and not s.dry_run:
            # What of the run is left, and why: a preview that includes unfinished objects.
            self.call(["--run-id", self.run_id, "--level", s.level, "--include-running"],
                      "sessionfinish", "leftover", s.level, preview=True)

    def session_end(self) -> None:
        s = self.settings
        session_tracker = tracker.session_tracker()
        self.note_ignored("session", session_tracker)
        session_evals = session_tracker.eval_ids
        if self.role == workers.WORKER:
            # The controller cleans them, once, with every worker's.
            self.pending_evals.extend(e for e in session_evals if e not in self.pending_evals)
            self.sync()
            return
        unfinished = self._merge_workers() if self.role == workers.CONTROLLER else {}
        self.tracked([*self.pending_evals, *[e for e in session_evals if e not in self.pending_evals]],
                     "sessionfinish", None)
        self._reap_unfinished(unfinished)
        self._run_sweeps()
        if s.auto_cleanup and s.fallback == "time" and s.level != "none":
            self.call(["--strategy", "fallback", "--older-than", s.age, "--level", s.level],
                      "sessionfinish", "fallback", s.level)
        self.age_cleanup("sessionfinish")

    def finish(self) -> None:
        """The session's end, once: the sweeps, then, whatever happened in them, the
        guard's release and the report."""
        if self.finished or not self.enabled or not self.started:
            return
        self.finished = True
        try:
            self.session_end()
        finally:
            try:
                if self.guard is not None:
                    self.guard.release()
            finally:
                if self.role != workers.WORKER:
                    self._conclude()
                    workers.remove_dir(self.records_dir)

    def _conclude(self) -> None:
        s = self.settings
        tally = summary.Tally(self.calls)
        guard = self.guard.to_json() if self.guard else None
        self.failed = bool(tally.failures or tally.failed_items or tally.skipped
                           or (guard and guard.get("error")))
        if s.report:
            doc = summary.document(tally, self.run_id, s, guard, self.started_at, now(),
                                   self.ignored)
            self.report_error = summary.write(s.report, doc)
            self.failed = self.failed or self.report_error is not None

    def summary_lines(self) -> List[str]:
        s = self.settings
        tally = summary.Tally(self.calls)
        guard = self.guard.to_json() if self.guard else None
        return summary.lines(tally, self.run_id, s, guard,
                             s.report if self.report_error is None else None,
                             self.report_error, self.fails_session, self.ignored)

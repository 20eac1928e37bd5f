"""One pytest session's cleanup: the calls of the binary (per test, per fixture scope,
at session start and end), the guard, and what the summary and report are made of.

``finish`` concludes the session exactly once, whichever hook gets there first, and
releases the guard whatever else fails: a guard that is not released takes pytest's
exit for a crash and deletes the run's running jobs.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from . import binary, ids, options, summary, tracker
from .guard import Guard
from .reach import Reach


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Context:
    """What cleanup knows of a test, or of a fixture scope wider than a test."""

    nodeid: str
    test_id: Optional[str]
    run_id: str
    tracker: tracker.Tracker

    @property
    def labels(self) -> Dict[str, str]:
        out = {ids.RUN_LABEL: self.run_id}
        if self.test_id is not None:
            out = {ids.TEST_LABEL: self.test_id, **out}
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

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

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
            self.calls.append(c)
            return c
        try:
            assert self.binary is not None
            c = binary.run(self.binary, full, **fields)
        except KeyboardInterrupt:
            # Ctrl-C: the call is cut; it still belongs in the summary.
            self.calls.append(binary.Call(argv=full, error="interrupted (Ctrl-C)", **fields))
            raise
        except Exception as e:  # never a traceback from cleanup: report it
            c = binary.Call(argv=full, error=f"{type(e).__name__}: {e}", **fields)
        self.reach.observe(c)
        self.calls.append(c)
        return c

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

    def note_ignored(self, where: str, t: tracker.Tracker) -> None:
        self.ignored.extend((where, v) for v in t.ignored)

    # -- the lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Session start: the guard (not in a dry run), then the age cleanup."""
        s = self.settings
        self.started = True
        if not s.dry_run:
            assert self.binary is not None
            self.guard = Guard(self.binary, self.run_id, s.scope_args(), s.lease_duration)
            if not self.guard.start() and self.guard.cluster_unusable():
                self.reach.failed(f"the guard: {self.guard.error}")
        self.age_cleanup("sessionstart")

    def after_test(self, ctx: Context) -> None:
        s = self.settings
        self.note_ignored(ctx.nodeid, ctx.tracker)
        self.tracked(ctx.tracker.eval_ids, "test", ctx)
        if s.level == "none":
            return
        assert ctx.test_id is not None
        lvl = ["--level", s.level]
        if s.strategy == "hybrid":
            # One call: the test's labels, the age rule and the watermark rule together.
            self.call(["--strategy", "hybrid", "--test-id", ctx.test_id, "--older-than", s.age,
                       *self.watermarks(), *lvl], "test", "per-test", s.level, ctx)
            return
        if s.per_test_label:
            self.call(["--test-id", ctx.test_id, *lvl], "test", "per-test", s.level, ctx)
        if s.strategy == "age":
            self.call(["--strategy", "age", "--older-than", s.age, *lvl],
                      "test", "strategy", s.level, ctx)
        elif s.strategy == "pressure":
            extra = ["--threshold", str(s.high)] if s.high is not None else []
            self.call(["--strategy", "pressure", *extra, *lvl], "test", "strategy", s.level, ctx)
        elif s.strategy == "watermark":
            self.call(["--strategy", "watermark", *self.watermarks(), *lvl],
                      "test", "strategy", s.level, ctx)

    def after_scope_labels(self, ctx: Context) -> None:
        """A module's or class's labels went out of use: clean what carries its test id,
        as after a test (finished objects; the run sweep takes the rest)."""
        s = self.settings
        if s.per_test_label and ctx.test_id is not None:
            self.call(["--test-id", ctx.test_id, "--level", s.level], "scope", "per-scope",
                      s.level, ctx)

    def after_fixture(self, ctx: Context) -> None:
        """A fixture wider than a test was torn down: clean what it tracked."""
        self.note_ignored(ctx.nodeid, ctx.tracker)
        self.tracked(ctx.tracker.eval_ids, "scope", ctx)

    def session_end(self) -> None:
        s = self.settings
        session_tracker = tracker.session_tracker()
        self.note_ignored("session", session_tracker)
        session_evals = session_tracker.eval_ids
        self.tracked([*self.pending_evals, *[e for e in session_evals if e not in self.pending_evals]],
                     "sessionfinish", None)
        if s.per_test_label:
            # What finished after its test ended (per-test cleanup takes finished objects only).
            self.call(["--run-id", self.run_id, "--level", s.level],
                      "sessionfinish", "run-sweep", s.level)
            if not s.dry_run:
                # What of the run is left, and why: a preview that includes unfinished objects.
                self.call(["--run-id", self.run_id, "--level", s.level, "--include-running"],
                          "sessionfinish", "leftover", s.level, preview=True)
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
                self._conclude()

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
        return summary.lines(tally, self.run_id, s.namespace, s.dry_run, guard,
                             s.report if self.report_error is None else None,
                             self.report_error, self.fails_session, self.ignored)

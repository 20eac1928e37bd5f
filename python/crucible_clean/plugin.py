"""The pytest plugin: per-test identity, tracked evaluations, cleanup strategies,
the run's guard and the "crucible-clean" summary.

Cleanup is on with ``--auto-cleanup``, ``--cleanup-old`` or ``--cleanup-strategy``
(or their ini options). Without them the plugin deletes nothing and needs no
binary: its fixtures still give each test an id and labels.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

import pytest

from . import binary, ids, options, summary, tracker
from .guard import Guard


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TestContext:
    nodeid: str
    test_id: str
    run_id: str
    tracker: tracker.Tracker

    @property
    def labels(self) -> Dict[str, str]:
        return {ids.TEST_LABEL: self.test_id, ids.RUN_LABEL: self.run_id}


@dataclass
class State:
    settings: options.Settings
    run_id: str
    binary: Optional[str] = None
    guard: Optional[Guard] = None
    calls: List[binary.Call] = field(default_factory=list)
    # Tracked evaluations not (all) cleaned when their test ended: retried at session end.
    pending_evals: List[str] = field(default_factory=list)
    started_at: str = field(default_factory=_now)
    report_error: Optional[str] = None
    fails_session: bool = False

    # -- calls -----------------------------------------------------------------------------
    def call(self, args: List[str], phase: str, purpose: str, level: str,
             ctx: Optional[TestContext] = None, preview: bool = False) -> binary.Call:
        s = self.settings
        full = [*args, *s.scope_args()]
        if s.dry_run or preview:
            full.append("--dry-run")
        fields = dict(phase=phase, purpose=purpose, level=level,
                      nodeid=ctx.nodeid if ctx else None, test_id=ctx.test_id if ctx else None)
        try:
            assert self.binary is not None
            c = binary.run(self.binary, full, **fields)
        except Exception as e:  # never a traceback from cleanup: report it
            c = binary.Call(argv=full, error=f"{type(e).__name__}: {e}", **fields)
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

    def tracked(self, eval_ids: List[str], phase: str, ctx: Optional[TestContext]) -> None:
        if not eval_ids:
            return
        args = ["--level", "all"]
        for e in eval_ids:
            args += ["--eval-id", e]
        c = self.call(args, phase, "tracked", "all", ctx)
        if c.report is not None and phase == "test":
            for item in c.report.get("items", []) or []:
                e = item.get("evalId")
                if item.get("result") == "skipped" and e in eval_ids and e not in self.pending_evals:
                    self.pending_evals.append(e)

    def after_test(self, ctx: TestContext) -> None:
        s = self.settings
        self.tracked(ctx.tracker.eval_ids, "test", ctx)
        if s.level == "none":
            return
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

    def session_end(self) -> None:
        s = self.settings
        session_evals = tracker.session_tracker().eval_ids
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


_STATE = pytest.StashKey[State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    s = options.settings(config)
    if config.getoption("help", False) or config.getoption("collectonly", False):
        # Nothing runs: no binary needed, no guard, no cleanup.
        s.auto_cleanup, s.cleanup_old, s.strategy = False, False, None
    state = State(settings=s, run_id=ids.new_run_id())
    tracker.reset_session(s.track_pattern)
    if s.enabled:
        try:
            state.binary = binary.find_binary()
        except binary.BinaryNotFound as e:
            raise pytest.UsageError(f"crucible-clean: {e}") from None
    config.stash[_STATE] = state


def _state(config: pytest.Config) -> Optional[State]:
    return config.stash.get(_STATE, None)


def pytest_sessionstart(session: pytest.Session) -> None:
    state = _state(session.config)
    if state is None or not state.settings.enabled:
        return
    s = state.settings
    if not s.dry_run:
        assert state.binary is not None
        state.guard = Guard(state.binary, state.run_id, s.scope_args(), s.lease_duration)
        state.guard.start()
    state.age_cleanup("sessionstart")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = _state(session.config)
    if state is None or not state.settings.enabled:
        return
    state.session_end()
    if state.guard is not None:
        state.guard.release()
    s = state.settings
    tally = summary.Tally(state.calls)
    guard = state.guard.to_json() if state.guard else None
    failed = bool(tally.failures or tally.failed_items or (guard and guard.get("error")))
    if s.report:
        doc = summary.document(tally, state.run_id, s, guard, state.started_at, _now())
        state.report_error = summary.write(s.report, doc)
        failed = failed or state.report_error is not None
    if failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        state.fails_session = True


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    state = _state(config)
    if state is None or not state.settings.enabled:
        return
    s = state.settings
    tally = summary.Tally(state.calls)
    terminalreporter.section("crucible-clean")
    guard = state.guard.to_json() if state.guard else None
    for line in summary.lines(tally, state.run_id, s.namespace, s.dry_run, guard,
                              s.report if state.report_error is None else None,
                              state.fails_session):
        terminalreporter.write_line(line)
    if state.report_error:
        terminalreporter.write_line(f"failures: {state.report_error}")


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _crucible_clean_test(request: pytest.FixtureRequest) -> Iterator[TestContext]:
    """Gives the test its id, exports it as TEST_LABEL_ID for the test's duration
    (restoring the previous value after), and cleans up after it."""
    state = request.config.stash[_STATE]
    nodeid = request.node.nodeid
    ctx = TestContext(nodeid=nodeid, test_id=ids.test_id(state.run_id, nodeid),
                      run_id=state.run_id, tracker=tracker.Tracker(state.settings.track_pattern))
    previous = os.environ.get(ids.ENV_VAR)
    os.environ[ids.ENV_VAR] = ctx.test_id
    tracker.push(ctx.tracker)
    try:
        yield ctx
    finally:
        tracker.pop(ctx.tracker)
        if previous is None:
            os.environ.pop(ids.ENV_VAR, None)
        else:
            os.environ[ids.ENV_VAR] = previous
        if state.settings.enabled:
            state.after_test(ctx)


@pytest.fixture
def crucible_test_id(_crucible_clean_test: TestContext) -> str:
    """This test's id (also in TEST_LABEL_ID during the test): label objects ``test-id=<it>``."""
    return _crucible_clean_test.test_id


@pytest.fixture
def crucible_labels(_crucible_clean_test: TestContext) -> Dict[str, str]:
    """Labels for the objects this test creates: ``test-id`` and ``crucible-clean/run``."""
    return dict(_crucible_clean_test.labels)


@pytest.fixture
def crucible_run_id(_crucible_clean_test: TestContext) -> str:
    """The session's run id (label ``crucible-clean/run``; the guard's Lease is named after it)."""
    return _crucible_clean_test.run_id


@pytest.fixture
def crucible_tracker(_crucible_clean_test: TestContext) -> tracker.Tracker:
    """This test's tracker: ``crucible_tracker.track(session)`` records the eval_id of
    evaluations created through ``session``; they are cleaned when the test ends."""
    return _crucible_clean_test.tracker

"""The session's hooks: configure, start, finish, unconfigure, the cleanup after each
test, the markers' check, pytest-xdist's nodes, and the summary.

The end of the session is a hook wrapper around every ``pytest_sessionfinish``: its
part after ``yield`` runs even when another plugin's hook raised, so the sweeps run,
the guard is released and the report written all the same. ``pytest_unconfigure``
concludes a session whose ``pytest_sessionfinish`` never came (another plugin's
``pytest_sessionstart`` raised, say). Commands that run no test (``--help``,
``--fixtures``, ``--markers``, ``--collect-only``, ``--setup-plan``…) need no binary
and touch no cluster.

The cleanup after a test runs at the end of its teardown (a wrapper of
``pytest_runtest_teardown``), when every fixture of the test is torn down and whether
any phase failed is known: with keep-failed, a failure in setup, call or teardown
keeps the test's objects. pytest-rerunfailures runs setup, call and teardown again for
each attempt, so each attempt is cleaned up (or kept) before the next.
"""

from __future__ import annotations

import sys
from typing import Optional

import pytest

from . import binary, ids, markers, options, tracker, workers
from .fixtures import STATE, TEST_CONTEXT
from .session import State

# Whether a phase of the test's current attempt failed.
FAILED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    markers.register(config)
    s = options.settings(config)
    role = workers.role(config) if options.runs_tests(config) else workers.SINGLE
    given = workers.worker_input(config) if role == workers.WORKER else {}
    run_id = given.get("run_id") or ids.new_run_id()
    state = State(settings=s, run_id=run_id, role=role)
    if role == workers.CONTROLLER:
        # The workers' records (and their usage errors), with cleanup on or off.
        state.records_dir = workers.make_dir(run_id)
    elif role == workers.WORKER and given.get("dir"):
        state.records = workers.Records(given["dir"], workers.worker_id(config))
    tracker.reset_session(s.track_pattern)
    if s.enabled:
        try:
            state.binary = binary.find_binary()
        except binary.BinaryNotFound as e:
            workers.remove_dir(state.records_dir)
            raise pytest.UsageError(f"crucible-clean: {e}") from None
    config.stash[STATE] = state


def _state(config: pytest.Config) -> Optional[State]:
    return config.stash.get(STATE, None)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """pytest-xdist, on the controller: each worker (a restarted one too) gets the run."""
    state = _state(node.config)
    if state is None:
        return
    node.workerinput[workers.KEY] = {
        "run_id": state.run_id,
        "dir": state.records_dir,
        "unreachable": state.reach.reason,
    }


def pytest_sessionstart(session: pytest.Session) -> None:
    # Before pytest-xdist's (trylast) starts the workers: they learn whether the guard
    # found the cluster unusable.
    state = _state(session.config)
    if state is None or not state.enabled:
        return
    state.start(workers.worker_input(session.config).get("unreachable"))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items) -> None:
    """Checks every test's crucible_clean markers: a bad value is a usage error naming
    the test. A worker cannot stop the run with one (xdist would take it for a crash):
    it runs no test and tells the controller, which exits with the usage error."""
    state = _state(config)
    if state is None or not options.runs_tests(config):
        return
    for item in items:
        try:
            markers.given(item)
        except pytest.UsageError as e:
            if state.role != workers.WORKER:
                raise
            state.record("usage", message=str(e))
            items.clear()
            return


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):
    item.stash[FAILED] = False  # a new attempt (pytest-rerunfailures) starts clean
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        item.stash[FAILED] = True
        state = _state(item.config)
        if state is not None and item.nodeid not in state.failed_tests:
            # Known before the module's or class's teardown that may follow.
            state.failed_tests.append(item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem):
    outcome = yield
    ctx = item.stash.get(TEST_CONTEXT, None)
    if ctx is None:
        return
    del item.stash[TEST_CONTEXT]
    state = _state(item.config)
    if state is None or not state.enabled:
        return
    failed = item.stash.get(FAILED, False) or getattr(outcome, "excinfo", None) is not None
    state.after_test(ctx, failed)


def _usage_errors(session: pytest.Session, state: State) -> None:
    """The controller: a worker's usage error (a bad marker) is the session's."""
    if state.role != workers.CONTROLLER:
        return
    errors = workers.read(state.records_dir).usage_errors
    if errors:
        sys.stderr.write(f"ERROR: {errors[0]}\n")
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session):
    # trylast: the innermost wrapper, so this runs before the terminal reporter's
    # wrapper prints the summary (and after pytest-xdist's workers are down).
    outcome = yield
    state = _state(session.config)
    if state is None:
        return
    _usage_errors(session, state)
    if not state.enabled:
        return
    state.finish()
    if state.failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        state.fails_session = True
    if getattr(outcome, "excinfo", None) is not None:
        # Another plugin's hook raised: pytest prints no terminal summary, so ours
        # is shown now.
        _show(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = _state(config)
    if state is None:
        return
    if state.enabled and not state.finished:
        state.finish()
    workers.remove_dir(state.records_dir)


def _show(config: pytest.Config, terminalreporter=None) -> None:
    state = _state(config)
    if state is None or not state.enabled or state.summary_shown or state.role == workers.WORKER:
        return
    tr = terminalreporter or config.pluginmanager.get_plugin("terminalreporter")
    if tr is None:
        return
    state.summary_shown = True
    tr.section("crucible-clean")
    for line in state.summary_lines():
        tr.write_line(line)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    _show(config, terminalreporter)

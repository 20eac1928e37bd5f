"""The session's hooks: configure, start, finish, unconfigure, and the summary.

The end of the session is a hook wrapper around every ``pytest_sessionfinish``: its
part after ``yield`` runs even when another plugin's hook raised, so the sweeps run,
the guard is released and the report written all the same. ``pytest_unconfigure``
concludes a session whose ``pytest_sessionfinish`` never came (another plugin's
``pytest_sessionstart`` raised, say). Commands that run no test (``--help``,
``--fixtures``, ``--markers``, ``--collect-only``, ``--setup-plan``…) need no binary
and touch no cluster.
"""

from __future__ import annotations

from typing import Optional

import pytest

from . import binary, ids, options, tracker
from .fixtures import STATE
from .session import State


def pytest_addoption(parser: pytest.Parser) -> None:
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    s = options.settings(config)
    state = State(settings=s, run_id=ids.new_run_id())
    tracker.reset_session(s.track_pattern)
    if s.enabled:
        try:
            state.binary = binary.find_binary()
        except binary.BinaryNotFound as e:
            raise pytest.UsageError(f"crucible-clean: {e}") from None
    config.stash[STATE] = state


def _state(config: pytest.Config) -> Optional[State]:
    return config.stash.get(STATE, None)


def pytest_sessionstart(session: pytest.Session) -> None:
    state = _state(session.config)
    if state is None or not state.enabled:
        return
    state.start()


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session):
    # trylast: the innermost wrapper, so this runs before the terminal reporter's
    # wrapper prints the summary.
    outcome = yield
    state = _state(session.config)
    if state is None or not state.enabled:
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
    if state is None or not state.enabled or state.finished:
        return
    state.finish()


def _show(config: pytest.Config, terminalreporter=None) -> None:
    state = _state(config)
    if state is None or not state.enabled or state.summary_shown:
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

"""The plugin's fixtures: each test's id, labels and tracker; the run's labels for
session fixtures; labels for module and class fixtures, cleaned when that scope ends;
and trackers for fixtures wider than a test, charged to the fixture, not to the test
that happened to set it up.
"""

from __future__ import annotations

import os
from typing import Dict, Iterator

import pytest

from . import ids, markers, tracker, workers
from .session import Context, State

STATE = pytest.StashKey[State]()
# The test's context, from its fixture's setup to the end of its teardown (where the
# plugin cleans up after it: pytest_runtest_teardown in lifecycle).
TEST_CONTEXT = pytest.StashKey[Context]()


def state_of(config: pytest.Config) -> State:
    return config.stash[STATE]


def _scope_labels(request: pytest.FixtureRequest) -> Iterator[Dict[str, str]]:
    """Labels with a test id made from the scope's node id (the module's or class's);
    when the scope ends, what carries them is cleaned as after a test."""
    state = state_of(request.config)
    nodeid = request.node.nodeid
    # Under pytest-xdist each worker sets up its own instance of a module or class
    # fixture: the id names the worker too, so that one worker's end of the module does
    # not clean what another worker's instance still uses.
    named = nodeid if state.role != workers.WORKER else f"{nodeid}@{workers.worker_id(request.config)}"
    ctx = Context(nodeid=nodeid, test_id=ids.test_id(state.run_id, named),
                  run_id=state.run_id, tracker=tracker.Tracker(state.settings.track_pattern),
                  rules=markers.rules(request.node, state.settings))
    yield dict(ctx.labels)
    if state.enabled:
        state.after_scope_labels(ctx)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """While a fixture wider than a test is set up, the evaluations tracked through
    ``crucible_clean.track`` are the fixture's: cleaned when it is torn down (after its
    own teardown), not when the test that first asked for it ends."""
    state = request.config.stash.get(STATE, None)
    if state is None or fixturedef.scope == "function":
        yield
        return
    where = f"{request.node.nodeid or '<session>'} (fixture {fixturedef.argname})"
    ctx = Context(nodeid=where, test_id=None, run_id=state.run_id,
                  tracker=tracker.Tracker(state.settings.track_pattern))

    def torn_down() -> None:
        if state.enabled:
            state.after_fixture(ctx)

    # Registered before the fixture runs: finalizers run last-in first-out, so this one
    # runs after the fixture's own teardown.
    fixturedef.addfinalizer(torn_down)
    tracker.push(ctx.tracker)
    try:
        yield
    finally:
        tracker.pop(ctx.tracker)


@pytest.fixture(autouse=True)
def _crucible_clean_test(request: pytest.FixtureRequest) -> Iterator[Context]:
    """Gives the test its id and its markers' rules, exports the id as TEST_LABEL_ID for
    the test's duration (restoring the previous value after). The cleanup after the test
    comes at the end of its teardown."""
    state = state_of(request.config)
    nodeid = request.node.nodeid
    ctx = Context(nodeid=nodeid, test_id=ids.test_id(state.run_id, nodeid),
                  run_id=state.run_id, tracker=tracker.Tracker(state.settings.track_pattern),
                  rules=markers.rules(request.node, state.settings))
    request.node.stash[TEST_CONTEXT] = ctx
    if state.enabled:
        state.test_started(ctx)
    previous = os.environ.get(ids.ENV_VAR)
    os.environ[ids.ENV_VAR] = ctx.test_id or ""
    tracker.push(ctx.tracker)
    try:
        yield ctx
    finally:
        tracker.pop(ctx.tracker)
        if previous is None:
            os.environ.pop(ids.ENV_VAR, None)
        else:
            os.environ[ids.ENV_VAR] = previous


@pytest.fixture
def crucible_test_id(_crucible_clean_test: Context) -> str:
    """This test's id (also in TEST_LABEL_ID during the test): label objects ``test-id=<it>``."""
    assert _crucible_clean_test.test_id is not None
    return _crucible_clean_test.test_id


@pytest.fixture
def crucible_labels(_crucible_clean_test: Context) -> Dict[str, str]:
    """Labels for the objects this test creates: ``test-id`` and ``crucible-clean/run``
    (and, from its ``crucible_clean`` marker, ``crucible-clean/priority`` and
    ``crucible-clean/level``)."""
    return dict(_crucible_clean_test.labels)


@pytest.fixture
def crucible_tracker(_crucible_clean_test: Context) -> tracker.Tracker:
    """This test's tracker: ``crucible_tracker.track(session)`` records the eval_id of
    evaluations created through ``session``; they are cleaned when the test ends."""
    return _crucible_clean_test.tracker


@pytest.fixture(scope="session")
def crucible_run_id(request: pytest.FixtureRequest) -> str:
    """The session's run id (label ``crucible-clean/run``; the guard's Lease is named after
    it). Session-scoped: any fixture may ask for it."""
    return state_of(request.config).run_id


@pytest.fixture(scope="session")
def crucible_run_labels(request: pytest.FixtureRequest) -> Dict[str, str]:
    """``{"crucible-clean/run": <run id>}`` for objects a session fixture shares: the
    session-end sweep and crash reaping cover them."""
    return {ids.RUN_LABEL: state_of(request.config).run_id}


@pytest.fixture(scope="module")
def crucible_module_labels(request: pytest.FixtureRequest) -> Iterator[Dict[str, str]]:
    """Labels for the objects a module fixture shares: ``test-id`` made from the module's
    node id, and ``crucible-clean/run``. They are cleaned when the module ends."""
    yield from _scope_labels(request)


@pytest.fixture(scope="class")
def crucible_class_labels(request: pytest.FixtureRequest) -> Iterator[Dict[str, str]]:
    """Labels for the objects a class fixture shares: ``test-id`` made from the class's
    node id, and ``crucible-clean/run``. They are cleaned when the class ends."""
    yield from _scope_labels(request)

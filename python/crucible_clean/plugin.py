"""The pytest plugin (entry point ``pytest11``): per-test identity, tracked evaluations,
cleanup strategies, the run's guard and the "crucible-clean" summary.

Cleanup is on with ``--auto-cleanup``, ``--cleanup-old`` or ``--cleanup-strategy``
(or their ini options). Without them the plugin deletes nothing and needs no
binary: its fixtures still give each test an id and labels.

The parts: ``options`` (flags and ini options), ``markers`` (``crucible_clean``
markers), ``workers`` (pytest-xdist), ``lifecycle`` (the session's hooks),
``session`` (the calls of the binary and the session's end), ``guard``, ``reach``
(skipping calls once the cluster does not answer), ``fixtures``, ``tracker`` and
``summary``. pytest registers this module; the hooks and fixtures below are theirs.
"""

from __future__ import annotations

from .fixtures import (  # noqa: F401
    _crucible_clean_test,
    crucible_class_labels,
    crucible_labels,
    crucible_module_labels,
    crucible_run_id,
    crucible_run_labels,
    crucible_test_id,
    crucible_tracker,
    pytest_fixture_setup,
)
from .lifecycle import (  # noqa: F401
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    pytest_runtest_teardown,
    pytest_sessionfinish,
    pytest_sessionstart,
    pytest_terminal_summary,
    pytest_unconfigure,
)

"""``@pytest.mark.crucible_clean(...)``: a test's, class's or module's own cleanup rules.

    @pytest.mark.crucible_clean(level="jobs", keep_failed="2h", strategy="label",
                                priority="high")

Per option, the nearest marker wins (the test's, then its class's, then the module's
``pytestmark``), and a marker wins over the command line and the configuration. A
marker never turns cleanup on: without a cleanup flag the plugin calls nothing. The
values are checked when the tests are collected; a bad one is a usage error that names
the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import pytest

from . import ids, options

NAME = "crucible_clean"
OPTIONS = ("level", "keep_failed", "strategy", "priority")

# The label that says which level a marker gave a test's objects: the session-end sweep
# of the run takes them at that level (never for none).
LEVEL_LABEL = "crucible-clean/level"
# The label a policy file's priority multipliers read (its default priorityLabel).
PRIORITY_LABEL = "crucible-clean/priority"

HELP = (f"{NAME}(level=none|pods|jobs|all, keep_failed=DUR|True|False, "
        "strategy=label|age|pressure|watermark|hybrid|None, priority=NAME): this test's "
        "cleanup (on a test, a class or a module's pytestmark); per option the nearest "
        "marker wins over the command line. priority labels the test's objects "
        f"{PRIORITY_LABEL}=NAME through crucible_labels (a policy file's priorities).")


@dataclass(frozen=True)
class Rules:
    """The cleanup rules of one test (or module, or class): the session's settings with
    the options its markers give."""

    level: str
    strategy: Optional[str]
    keep_failed: Optional[str]
    priority: Optional[str] = None
    # A marker gave the level: the objects carry LEVEL_LABEL.
    level_marked: bool = False

    def labels(self) -> Dict[str, str]:
        """The labels these rules add to crucible_labels."""
        out = {}
        if self.level_marked:
            out[LEVEL_LABEL] = self.level
        if self.priority is not None:
            out[PRIORITY_LABEL] = self.priority
        return out


def register(config: pytest.Config) -> None:
    config.addinivalue_line("markers", HELP)


def _check(nodeid: str, key: str, value: Any) -> Any:
    def bad(what: str) -> pytest.UsageError:
        return pytest.UsageError(
            f"crucible-clean: {nodeid}: @pytest.mark.{NAME}({key}={value!r}): {what}")

    if key == "level":
        if value not in options.LEVELS:
            raise bad(f"level must be one of {', '.join(options.LEVELS)}")
        return value
    if key == "strategy":
        if value is not None and value not in options.STRATEGIES:
            raise bad(f"strategy must be one of {', '.join(options.STRATEGIES)} or None")
        return value
    if key == "priority":
        if value is None:
            return None
        if not isinstance(value, str) or not value or not ids.is_label_value(value):
            raise bad("priority must be a label value (at most 63 characters: letters, "
                      "digits, '-', '_', '.'), such as \"high\"")
        return value
    # keep_failed
    if not isinstance(value, (bool, str)) and value is not None:
        raise bad("keep_failed must be a duration such as \"2h\", True or False")
    try:
        return options.keep_duration("keep_failed", value)
    except pytest.UsageError:
        raise bad("keep_failed must be a duration such as \"2h\", True or False") from None


def given(node: pytest.Item, nodeid: Optional[str] = None) -> Dict[str, Any]:
    """The options the markers of ``node`` and its parents give, nearest first, checked.
    A bad value (or an unknown option, or a positional argument) is a usage error
    naming the test."""
    where = nodeid or node.nodeid
    out: Dict[str, Any] = {}
    for m in node.iter_markers(NAME):
        if m.args:
            raise pytest.UsageError(
                f"crucible-clean: {where}: @pytest.mark.{NAME} takes keyword arguments only "
                f"({', '.join(OPTIONS)}), not {m.args!r}")
        for key, value in m.kwargs.items():
            if key not in OPTIONS:
                raise pytest.UsageError(
                    f"crucible-clean: {where}: @pytest.mark.{NAME}: unknown option {key!r} "
                    f"(known: {', '.join(OPTIONS)})")
            checked = _check(where, key, value)
            out.setdefault(key, checked)  # the nearest marker comes first
    return out


def rules(node: Any, settings: options.Settings) -> Rules:
    """The rules for ``node`` (a test, a class, a module): its markers over the
    session's settings."""
    g = given(node) if node is not None and hasattr(node, "iter_markers") else {}
    return Rules(
        level=g.get("level", settings.level),
        strategy=g.get("strategy", settings.strategy),
        keep_failed=g.get("keep_failed", settings.keep_failed),
        priority=g.get("priority"),
        level_marked="level" in g,
    )


def session_rules(settings: options.Settings) -> Rules:
    return Rules(level=settings.level, strategy=settings.strategy,
                 keep_failed=settings.keep_failed)

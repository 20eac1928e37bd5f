"""The plugin's flags, each also an ini option, and their validation.

A flag on the command line wins over the ini option of the same name
(``--cleanup-level`` / ``cleanup_level``, ``--high-watermark`` / ``high_watermark``…);
a ``crucible_clean`` marker wins over both for its test (``markers``).
Booleans and numbers are typed ini options, so pytest 9's native ``[tool.pytest]``
table takes ``auto_cleanup = true`` and ``high_watermark = 0.7``. Relative paths
resolve from the configuration file's directory (from the current directory on the
command line), once, at configuration.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import pytest

from .tracker import DEFAULT_PATTERN

LEVELS = ("none", "pods", "jobs", "all")
STRATEGIES = ("label", "age", "pressure", "watermark", "hybrid")
FALLBACKS = ("none", "time")
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w))+$")

# --cleanup-keep-failed given without a value.
KEEP_FAILED_DEFAULT = "24h"

# flag, ini name, kind (bool|str|path|float|choice|duration|keep), choices, default, help
OPTIONS: List[tuple] = [
    ("--auto-cleanup", "auto_cleanup", "bool", None, False,
     "after each test, clean the objects labelled with its test id (see --cleanup-level)"),
    ("--cleanup-level", "cleanup_level", "choice", LEVELS, "pods",
     "what to clean: none, pods, jobs, or all (jobs with their pods, plus bare pods); "
     "given alone (not none), it turns on the cleanup after each test"),
    ("--cleanup-old", "cleanup_old", "bool", None, False,
     "at session start and end, clean finished evaluation objects older than --cleanup-age"),
    ("--cleanup-age", "cleanup_age", "duration", None, "30m",
     "age for --cleanup-old, --cleanup-fallback=time and the age/hybrid strategies (90s, 30m, 2h)"),
    ("--cleanup-fallback", "cleanup_fallback", "choice", FALLBACKS, "none",
     "with --auto-cleanup: time = at session end also clean objects without a test-id label "
     "older than --cleanup-age"),
    ("--cleanup-strategy", "cleanup_strategy", "choice", STRATEGIES, None,
     "checked after each test: label, age, pressure, watermark or hybrid"),
    ("--high-watermark", "high_watermark", "float", None, None,
     "watermark/hybrid: act at this count/pods usage (default 0.8); pressure: its threshold"),
    ("--low-watermark", "low_watermark", "float", None, None,
     "watermark/hybrid: clean down to this count/pods usage (default 0.5)"),
    ("--cleanup-dry-run", "cleanup_dry_run", "bool", None, False,
     "report what would be cleaned, delete nothing (no guard is started)"),
    ("--cleanup-namespace", "cleanup_namespace", "str", None, "crucible",
     "namespace of the evaluation objects"),
    ("--cleanup-context", "cleanup_context", "str", None, None, "kubeconfig context"),
    ("--cleanup-kubeconfig", "cleanup_kubeconfig", "path", None, None, "kubeconfig file"),
    ("--cleanup-report", "cleanup_report", "path", None, None,
     "write every cleanup report of the session to this file as one JSON document"),
    ("--cleanup-lease-duration", "cleanup_lease_duration", "duration", None, None,
     "how long the run's Lease outlives a guard that stopped renewing it (default: the binary's)"),
    ("--cleanup-track-pattern", "cleanup_track_pattern", "str", None, DEFAULT_PATTERN,
     "regular expression for the URL paths of POSTs whose eval_id the tracker records"),
    ("--cleanup-keep-failed", "cleanup_keep_failed", "keep", None, None,
     f"keep a failed test's objects for DUR (default {KEEP_FAILED_DEFAULT}) instead of "
     "cleaning them: annotation crucible-clean/keep-until; write --cleanup-keep-failed=DUR"),
]

# The flags that turn cleanup on (besides --cleanup-level given alone).
_MODES = ("auto_cleanup", "cleanup_old", "cleanup_strategy")


# pytest 8.4 added the "float" ini type; before it, numbers are strings we parse.
_FLOAT_INI = tuple(getattr(pytest, "version_tuple", (0,))[:2]) >= (8, 4)

# The options that show or list something and run no test: no binary, no guard, no
# cleanup, and no validation of our options (so --help works with a bad value).
_NO_TESTS = ("help", "version", "collectonly", "showfixtures", "show_fixtures_per_test",
             "markers", "setupplan")


def addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("crucible-clean", "crucible-clean: clean up evaluation pods and jobs")
    for flag, ini, kind, choices, default, help_ in OPTIONS:
        shown = "" if default in (None, False) else f" [default: {default}]"
        if kind == "bool":
            group.addoption(flag, action="store_true", default=None, dest=ini, help=help_)
            parser.addini(ini, help_ + " (ini)", type="bool", default=False)
        elif kind == "keep":
            # An optional value: the flag alone means the default duration.
            group.addoption(flag, action="store", nargs="?", const=KEEP_FAILED_DEFAULT,
                            default=None, dest=ini, metavar="DUR", help=help_)
            parser.addini(ini, help_ + " (ini: a duration, true or false)", default=None)
        else:
            group.addoption(flag, action="store", default=None, dest=ini, choices=choices,
                            metavar=ini.upper() if choices is None else None, help=help_ + shown)
            if kind == "float" and _FLOAT_INI:
                parser.addini(ini, help_ + shown + " (ini)", type="float", default=None)
            else:
                parser.addini(ini, help_ + shown + " (ini)", default=None)


def runs_tests(config: pytest.Config) -> bool:
    """False for the commands that only show or list something (--help, --fixtures,
    --markers, --collect-only, --setup-plan, --fixtures-per-test…)."""
    return not any(getattr(config.option, name, False) for name in _NO_TESTS)


def _raw(config: pytest.Config, ini: str) -> tuple:
    """(value, given on the command line?)."""
    v = config.getoption(ini)
    if v is not None:
        return v, True
    try:
        v = config.getini(ini)
    except (ValueError, TypeError, pytest.UsageError) as e:
        # pytest's own message may not name the option ("invalid truth value 'maybe'").
        raise pytest.UsageError(f"crucible-clean: ini option {ini}: {e}") from None
    if v in (None, "", []):
        return None, False
    return v, False


def _path(config: pytest.Config, value: str, on_cli: bool) -> str:
    """An absolute path: from the invocation directory for a flag, from the
    configuration file's directory (else the rootdir) for an ini option."""
    value = os.path.expanduser(str(value))
    if os.path.isabs(value):
        return value
    if on_cli:
        base = str(config.invocation_params.dir)
    else:
        inipath = getattr(config, "inipath", None)
        base = str(inipath.parent) if inipath is not None else str(config.rootpath)
    return os.path.normpath(os.path.join(base, value))


@dataclass
class Settings:
    auto_cleanup: bool
    level: str
    cleanup_old: bool
    age: str
    fallback: str
    strategy: Optional[str]
    high: Optional[float]
    low: Optional[float]
    dry_run: bool
    namespace: str
    context: Optional[str]
    kubeconfig: Optional[str]
    report: Optional[str]
    lease_duration: Optional[str]
    track_pattern: str
    # How long a failed test's objects are kept (None: they are cleaned as any test's).
    keep_failed: Optional[str] = None
    # --cleanup-level given without --auto-cleanup, --cleanup-old or --cleanup-strategy:
    # it turned on the per-test cleanup (``auto_cleanup`` is then True as well).
    level_alone: bool = False

    @property
    def enabled(self) -> bool:
        """Cleanup is on: the plugin calls the binary and starts the guard."""
        return self.auto_cleanup or self.cleanup_old or self.strategy is not None

    def per_test_label_for(self, level: str, strategy: Optional[str]) -> bool:
        """After a test with this level and strategy (the session's, or its marker's),
        clean the objects labelled with its test id."""
        return level != "none" and (self.auto_cleanup or strategy in ("label", "hybrid"))

    @property
    def per_test_label(self) -> bool:
        """After each test, clean the objects labelled with its test id."""
        return self.per_test_label_for(self.level, self.strategy)

    def scope_args(self) -> List[str]:
        args = ["-n", self.namespace]
        if self.context:
            args += ["--context", self.context]
        if self.kubeconfig:
            args += ["--kubeconfig", self.kubeconfig]
        return args


def _float(name: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        f = float(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(
            f"crucible-clean: {name} must be a number in (0, 1], not {value!r}") from None
    if not 0 < f <= 1:
        raise pytest.UsageError(f"crucible-clean: {name} must be in (0, 1], not {value!r}")
    return f


def disabled() -> Settings:
    """Cleanup off, every other option at its default (for commands that run no test)."""
    values = {ini: default for _, ini, _, _, default, _ in OPTIONS}
    return _build(values)


def _build(values: Dict[str, Any]) -> Settings:
    return Settings(
        auto_cleanup=bool(values["auto_cleanup"]),
        level=values["cleanup_level"],
        cleanup_old=bool(values["cleanup_old"]),
        age=values["cleanup_age"],
        fallback=values["cleanup_fallback"],
        strategy=values["cleanup_strategy"],
        high=values["high_watermark"],
        low=values["low_watermark"],
        dry_run=bool(values["cleanup_dry_run"]),
        namespace=values["cleanup_namespace"],
        context=values["cleanup_context"],
        kubeconfig=values["cleanup_kubeconfig"],
        report=values["cleanup_report"],
        lease_duration=values["cleanup_lease_duration"],
        track_pattern=values["cleanup_track_pattern"],
        keep_failed=values["cleanup_keep_failed"],
    )


def keep_duration(name: str, value: Any) -> Optional[str]:
    """A keep-failed value (flag, ini option or marker) as a duration, or None for off:
    true means the default duration, false (or empty) off."""
    if value is None or value is False:
        return None
    if value is True:
        return KEEP_FAILED_DEFAULT
    text = str(value).strip()
    if text.lower() in ("", "false", "no", "off", "0"):
        return None
    if text.lower() in ("true", "yes", "on", "1"):
        return KEEP_FAILED_DEFAULT
    if not _DURATION.match(text):
        raise pytest.UsageError(
            f"crucible-clean: {name} must be a duration such as 30m, 24h, 7d (or true/false), "
            f"not {value!r}; on the command line write --cleanup-keep-failed=DUR")
    return text


def settings(config: pytest.Config) -> Settings:
    """Reads and validates the options; bad or useless ones are a usage error.
    Commands that run no test get :func:`disabled` and no check at all."""
    if not runs_tests(config):
        return disabled()
    values: Dict[str, Any] = {}
    given: Dict[str, bool] = {}  # on the command line
    explicit: Dict[str, bool] = {}  # on the command line or in the configuration
    for flag, ini, kind, choices, default, _ in OPTIONS:
        v, on_cli = _raw(config, ini)
        given[ini] = on_cli
        explicit[ini] = v is not None
        if v is None:
            v = default
        name = flag if on_cli else f"ini option {ini}"
        if kind == "bool":
            v = bool(v)
        elif kind == "path" and v is not None:
            v = _path(config, v, on_cli)
        elif kind == "choice" and v is not None and v not in choices:
            raise pytest.UsageError(
                f"crucible-clean: {name} must be one of {', '.join(choices)}, not {v!r}")
        elif kind == "duration" and v is not None and not _DURATION.match(str(v)):
            raise pytest.UsageError(
                f"crucible-clean: {name} must be a duration such as 90s, 30m, 2h, not {v!r}")
        elif kind == "float" and v is not None:
            v = _float(name, v)
        elif kind == "keep":
            v = keep_duration(name, v)
        values[ini] = v
    # --cleanup-level alone (not none) cleans after each test, as the seed's fixture does.
    alone = (explicit["cleanup_level"] and values["cleanup_level"] != "none"
             and not any(values[m] for m in _MODES))
    s = _build(values)
    if alone:
        s.auto_cleanup = True
        s.level_alone = True
    try:
        re.compile(s.track_pattern)
    except re.error as e:
        raise pytest.UsageError(
            f"crucible-clean: --cleanup-track-pattern is not a regular expression: {e}") from None
    _refuse_useless(s, given)
    return s


def _refuse_useless(s: Settings, given: Dict[str, bool]) -> None:
    """A flag given on the command line that would do nothing is refused, as the binary
    refuses its own (ini options are configuration and are only checked for values)."""

    def refuse(flag: str, why: str) -> None:
        raise pytest.UsageError(f"crucible-clean: {flag} {why}")

    if not s.enabled:
        for flag, ini, *_ in OPTIONS:
            if given[ini] and ini not in _MODES:
                if ini == "cleanup_level":
                    refuse("--cleanup-level=none", "alone does nothing (any other level "
                           "turns on the cleanup after each test)")
                refuse(flag, "does nothing without --auto-cleanup, --cleanup-old, "
                       "--cleanup-strategy or --cleanup-level")
        return
    if given["cleanup_fallback"] and not s.auto_cleanup:
        refuse("--cleanup-fallback", "needs --auto-cleanup")
    if s.fallback == "time" and not s.auto_cleanup:
        refuse("cleanup_fallback = time", "needs --auto-cleanup")
    uses_age = s.cleanup_old or s.fallback == "time" or s.strategy in ("age", "hybrid")
    if given["cleanup_age"] and not uses_age:
        refuse("--cleanup-age",
               "needs --cleanup-old, --cleanup-fallback=time or --cleanup-strategy age or hybrid")
    if given["high_watermark"] and s.strategy not in ("watermark", "hybrid", "pressure"):
        refuse("--high-watermark", "needs --cleanup-strategy watermark, hybrid or pressure")
    if given["low_watermark"] and s.strategy not in ("watermark", "hybrid"):
        refuse("--low-watermark", "needs --cleanup-strategy watermark or hybrid")
    high = s.high if s.high is not None else 0.8
    low = s.low if s.low is not None else 0.5
    if s.strategy in ("watermark", "hybrid") and not low < high:
        refuse("--low-watermark", f"({low}) must be below --high-watermark ({high})")
    if given["cleanup_lease_duration"] and s.dry_run:
        refuse("--cleanup-lease-duration", "does nothing with --cleanup-dry-run (no guard runs)")

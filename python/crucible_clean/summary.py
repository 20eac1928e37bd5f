"""What the session's cleanup calls did: the terminal section and the JSON document."""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections import Counter, OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from .binary import Call

CLEANED = ("deleted", "gone")
WOULD = ("wouldDelete", "planned")  # planned: a client-side dry run
HELD = ("kept", "skipped")
MARKED = ("marked", "wouldMark")  # a keep-failed call's rows (a KeepReport)
FAILED = ("failed", "conflict", "cancelled")
UNFINISHED = ("Pending", "Running", "Unknown", "Active")

PURPOSES = {
    "per-test": "after each test, by its test id",
    "per-scope": "after a module or class, by its test id",
    "tracked": "tracked evaluations",
    "strategy": "after each test, strategy check",
    "age": "age cleanup",
    "fallback": "unlabelled objects by age (fallback)",
    "run-sweep": "the run's objects at session end",
    "leftover": "what of the run is left (preview)",
    "keep-failed": "a failed test's objects, kept",
    "worker-crash": "a test whose xdist worker died",
}


def _kinds(counter: Counter) -> str:
    parts = []
    for kind in ("Job", "Pod"):
        n = counter.get(kind, 0)
        if n:
            parts.append(f"{n} {kind.lower()}{'' if n == 1 else 's'}")
    return ", ".join(parts) or "0 objects"


class Tally:
    """Everything the session's calls did, object by object."""

    def __init__(self, calls: List[Call]) -> None:
        self.calls = calls
        # (strategy, level, purpose) -> Counter of kinds cleaned / that would be cleaned
        self.cleaned: "OrderedDict[Tuple[str, str, str], Counter]" = OrderedDict()
        self.would: "OrderedDict[Tuple[str, str, str], Counter]" = OrderedDict()
        # object -> reason it was held, for objects never cleaned during the session
        held: Dict[Tuple[str, str], str] = {}
        gone: set = set()
        self.failed_items: List[str] = []
        self.notes: List[str] = []
        # keep-failed: (kind, name) -> {"test": node id, "until": time}, in order
        self.kept_failed: "OrderedDict[Tuple[str, str], Dict[str, str]]" = OrderedDict()
        for c in calls:
            for n in c.notes:
                if n not in self.notes:
                    self.notes.append(n)
            if c.report is None:
                continue
            strategy = str(c.report.get("strategy", "?"))
            key = (strategy, c.level, c.purpose)
            for item in c.report.get("items", []) or []:
                obj = (item.get("kind", "?"), item.get("name", "?"))
                result = item.get("result")
                if c.purpose == "keep-failed":
                    if result in MARKED:
                        self.kept_failed.setdefault(obj, {
                            "test": c.nodeid or "?", "until": item.get("keepUntil") or "?"})
                    elif result in FAILED:
                        self.failed_items.append(
                            f"{obj[0].lower()}/{obj[1]} (not marked kept): "
                            f"{item.get('error') or ''}".rstrip(": "))
                    continue
                if c.purpose == "leftover":
                    # A preview of the run's objects, unfinished ones included.
                    if item.get("phase") in UNFINISHED or result in HELD:
                        held[obj] = f"not finished at session end ({item.get('phase')})"
                    continue
                if result in CLEANED:
                    self.cleaned.setdefault(key, Counter())[obj[0]] += 1
                    gone.add(obj)
                elif result in WOULD:
                    self.would.setdefault(key, Counter())[obj[0]] += 1
                elif result in HELD:
                    held[obj] = item.get("reason") or result
                elif result in FAILED:
                    self.failed_items.append(
                        f"{obj[0].lower()}/{obj[1]} ({result}): {item.get('error') or ''}".rstrip(": "))
        self.held = {o: r for o, r in held.items() if o not in gone and o not in self.kept_failed}
        self.failures = [c for c in calls if c.failed]
        self.skipped = [c for c in calls if c.skipped is not None]

    def totals(self) -> Dict[str, int]:
        return {
            "calls": len(self.calls),
            "failedCalls": len(self.failures),
            "skippedCalls": len(self.skipped),
            "cleaned": sum(sum(c.values()) for c in self.cleaned.values()),
            "wouldClean": sum(sum(c.values()) for c in self.would.values()),
            "held": len(self.held),
            "keptFailed": len(self.kept_failed),
            "failedDeletes": len(self.failed_items),
        }

    def delete_kept_command(self, settings: Any) -> Optional[str]:
        """The one command that deletes now what keep-failed kept."""
        if not self.kept_failed:
            return None
        words = ["kubectl", "delete", "-n", settings.namespace]
        if settings.context:
            words += ["--context", settings.context]
        if settings.kubeconfig:
            words += ["--kubeconfig", settings.kubeconfig]
        words.append("--ignore-not-found")
        words += [f"{kind.lower()}/{name}" for kind, name in self.kept_failed]
        return " ".join(shlex.quote(w) for w in words)


def _kept_failed(tally: Tally, settings: Any) -> List[str]:
    """Each object keep-failed kept, by test, and the command that deletes them now."""
    if not tally.kept_failed:
        return []
    n = len(tally.kept_failed)
    by_test: "OrderedDict[str, List[str]]" = OrderedDict()
    untils = set()
    for (kind, name), v in tally.kept_failed.items():
        by_test.setdefault(v["test"], []).append(f"{kind.lower()}/{name}")
        untils.add(v["until"])
    verb = "would keep" if settings.dry_run else "kept"
    until = f"until {min(untils)}" if len(untils) == 1 else f"until {min(untils)} to {max(untils)}"
    # By test (or module or class: its shared objects, when one of its tests failed).
    out = [f"{verb} for debugging: {n} object{'s' if n != 1 else ''}, {until}"]
    for test, objs in by_test.items():
        out.append(f"  {test}: {', '.join(objs)}")
    out.append(f"  delete them now: {tally.delete_kept_command(settings)}")
    return out


def lines(tally: Tally, run_id: str, settings: Any, guard: Optional[dict],
          report_path: Optional[str], report_error: Optional[str], fails_session: bool,
          ignored: List[Tuple[str, str]]) -> List[str]:
    namespace, dry_run = settings.namespace, settings.dry_run
    out = []
    t = tally.totals()
    ran = t["calls"] - t["skippedCalls"]
    out.append(
        f"run {run_id} in namespace {namespace}: {ran} call{'s' if ran != 1 else ''} "
        f"of kubectl-crucible-clean, {t['failedCalls']} failed"
        + (f", {t['skippedCalls']} skipped" if t["skippedCalls"] else "")
        + (" (dry run: nothing deleted)" if dry_run else ""))
    table = tally.would if dry_run else tally.cleaned
    verb = "would clean" if dry_run else "cleaned"
    if table:
        out.append(f"{verb}:")
        for (strategy, level, purpose), counter in table.items():
            what = PURPOSES.get(purpose, purpose)
            out.append(f"  {strategy:<9} level {level:<5} {what:<40} {_kinds(counter)}")
    else:
        out.append(f"{verb}: nothing")
    if tally.held:
        reasons = Counter(tally.held.values())
        out.append(f"kept: {len(tally.held)} object{'s' if len(tally.held) != 1 else ''}")
        for reason, n in reasons.most_common():
            out.append(f"  {n:>4}  {reason}")
    out.extend(_kept_failed(tally, settings))
    for n in tally.notes:
        out.append(f"note: {n}")
    if ignored:
        values = sorted({v for _, v in ignored})
        shown = ", ".join(repr(v if len(v) <= 72 else v[:69] + "...") for v in values[:3])
        more = f" and {len(values) - 3} more" if len(values) > 3 else ""
        out.append(f"note: the tracker ignored {len(values)} eval_id value"
                   f"{'s' if len(values) != 1 else ''} that cannot be a label value "
                   f"(at most 63 characters: letters, digits, '-', '_', '.'): {shown}{more}; "
                   f"those evaluations were not cleaned")
    if guard is not None:
        if guard.get("error"):
            out.append(f"guard: {guard['error']} (log {guard.get('log')})")
        elif guard.get("released"):
            out.append(f"guard: Lease {guard['lease']} held during the session, released at its end")
    if tally.failures or tally.failed_items or tally.skipped or report_error or (
            guard and guard.get("error")):
        out.append("failures:")
        for c in tally.failures:
            where = c.nodeid or c.phase
            out.append(f"  {where} ({PURPOSES.get(c.purpose, c.purpose)}): {c.error}")
        for f in tally.failed_items:
            out.append(f"  {f}")
        if tally.skipped:
            n = len(tally.skipped)
            out.append(f"  {n} later cleanup call{'s were' if n != 1 else ' was'} skipped: "
                       f"the cluster could not be reached or used (the first failure is above)")
        if report_error:
            out.append(f"  {report_error}")
        if fails_session:
            out.append("crucible-clean: cleanup failed, so the session fails (exit status 1)")
    if report_path:
        out.append(f"report: {report_path}")
    return out


def document(tally: Tally, run_id: str, settings: Any, guard: Optional[dict],
             started_at: str, finished_at: str,
             ignored: List[Tuple[str, str]]) -> Dict[str, Any]:
    return {
        "apiVersion": "crucible-clean/v1",
        "kind": "PytestCleanupSession",
        "runId": run_id,
        "namespace": settings.namespace,
        "context": settings.context,
        "dryRun": settings.dry_run,
        "startedAt": started_at,
        "finishedAt": finished_at,
        "guard": guard,
        "totals": tally.totals(),
        "kept": [{"kind": k, "name": n, "reason": r} for (k, n), r in sorted(tally.held.items())],
        "keptFailed": [{"kind": k, "name": n, "test": v["test"], "keepUntil": v["until"]}
                       for (k, n), v in tally.kept_failed.items()],
        "deleteKeptCommand": tally.delete_kept_command(settings),
        "notes": tally.notes,
        "ignoredEvalIds": [{"where": w, "value": v} for w, v in ignored],
        "calls": [c.to_json() for c in tally.calls],
    }


def write(path: str, doc: Dict[str, Any]) -> Optional[str]:
    """Writes the document; returns an error message instead of raising, and leaves no
    temporary file behind. The temporary file is a fresh one of its own (never a name
    another process could have planted a link at, or that two sessions could share),
    renamed over ``path`` once complete."""
    if os.path.isdir(path):
        return f"cannot write the report {path}: it is a directory"
    tmp = None
    try:
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        # mkstemp's file is 0600; a report gets the mode any file of the user gets.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        return None
    except OSError as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return f"cannot write the report {path}: {e.strerror or e}"


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask

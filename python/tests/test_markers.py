"""``@pytest.mark.crucible_clean(...)`` on tests, classes and modules (the nearest
marker wins, per option, over the command line), its check, and ``--cleanup-level``
given alone."""

from __future__ import annotations

import kube

KEPT_MODULE = '''
import pytest
import kube
from conftest import record

pytestmark = pytest.mark.crucible_clean(level="none")


def test_module_level_none(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("none"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    record("none", j)


@pytest.mark.crucible_clean(level="all", priority="high")
def test_nearest_marker_wins(ns, crucible_labels):
    assert crucible_labels["crucible-clean/priority"] == "high"
    j = kube.create_job(ns, kube.new_id("near"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    record("near", j)


@pytest.mark.crucible_clean(level="jobs")
class TestJobsOnly:
    @pytest.mark.crucible_clean(strategy="age")
    def test_in_class(self, ns, crucible_labels):
        assert crucible_labels["crucible-clean/level"] == "jobs"
        j = kube.create_job(ns, kube.new_id("cls"), crucible_labels)
        kube.wait_jobs_finished(ns, [j])
        record("jobs", j)
'''

PLAIN_MODULE = '''
import kube
from conftest import record


def test_plain(ns, crucible_labels):
    assert set(crucible_labels) == {"test-id", "crucible-clean/run"}
    j = kube.create_job(ns, kube.new_id("plain"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    record("plain", j)
    # Finishes after the test: the run sweep at session end takes it.
    late = kube.create_pod(ns, "late-" + kube.new_id(""), crucible_labels)
    record("late", late)
'''

LATE_NONE = '''
import pytest
import kube
from conftest import record


@pytest.mark.crucible_clean(level="none")
def test_late_pod_kept(ns, crucible_labels):
    p = kube.create_pod(ns, "latenone-" + kube.new_id(""), crucible_labels)
    record("latenone", p)
'''


WAIT_LATE = '''
import kube


def test_z_late_pods_finish(ns):
    made = dict(line.split() for line in open("made.txt").read().splitlines())
    kube.wait_pods_phase(ns, [made["late"], made["latenone"]])
'''


def _made(inner) -> dict:
    rows = [ln.split() for ln in (inner.pytester.path / "made.txt").read_text().splitlines()]
    return {k: v for k, v in rows}


def _pods_of(ns: str, job: str) -> list:
    return kube.present(ns, "pods", f"batch.kubernetes.io/job-name={job}")


def test_markers_level_priority_and_strategy(inner, ns):
    """--auto-cleanup --cleanup-level=all with a module marked level="none": its objects
    stay, also through the run sweep at session end; a test's own marker wins over its
    module's; a class's level="jobs" and a test's strategy="age" apply to its test; the
    run sweep at session end takes each marked level's objects at that level."""
    inner.pytester.makepyfile(test_kept=KEPT_MODULE, test_plain=PLAIN_MODULE,
                              test_late=LATE_NONE, test_z=WAIT_LATE)
    r = inner.run("--auto-cleanup", "--cleanup-level=all", *inner.scope(),
                  "--cleanup-report=report.json")
    out = r.stdout.str()
    r.assert_outcomes(passed=6)
    assert r.ret == 0, out + r.stderr.str()
    made = _made(inner)
    jobs = kube.present(ns, "jobs")
    # level="none" on the module: the job and its pod stay, labelled with the level.
    assert made["none"] in jobs and len(_pods_of(ns, made["none"])) == 1
    (kept,) = kube.get_json("jobs", "-n", ns, "-l", "crucible-clean/level=none")["items"]
    assert kept["metadata"]["name"] == made["none"]
    # A pod of a level="none" test that finished after its test: the sweep left it.
    assert made["latenone"] in kube.present(ns, "pods")
    # The test's own marker (level="all") wins over the module's; level="jobs" from the
    # class: jobs are the unit, their pods go with them (the garbage collector's work).
    for j in (made["near"], made["jobs"]):
        assert j not in jobs
        kube.until(f"the pods of {j} gone", lambda: _pods_of(ns, j) == [])
    # No marker: the session's level all; the late pod went with the run sweep.
    assert made["plain"] not in jobs and made["late"] not in kube.present(ns, "pods")
    doc = inner.report(inner.pytester.path / "report.json")
    calls = doc["calls"]
    by_test = {}
    for c in calls:
        by_test.setdefault(c["nodeid"], []).append(c)
    assert "test_kept.py::test_module_level_none" not in by_test  # nothing was called
    (near,) = by_test["test_kept.py::test_nearest_marker_wins"]
    assert near["level"] == "all"
    cls = by_test["test_kept.py::TestJobsOnly::test_in_class"]
    assert [c["purpose"] for c in cls] == ["per-test", "strategy"]
    assert all(c["level"] == "jobs" for c in cls)
    assert cls[1]["argv"][cls[1]["argv"].index("--strategy") + 1] == "age"
    sweeps = [c for c in calls if c["purpose"] == "run-sweep"]
    selectors = sorted(c["argv"][c["argv"].index("-l") + 1] for c in sweeps)
    assert selectors == ["app=evaluation,!crucible-clean/level",
                         "app=evaluation,crucible-clean/level=all",
                         "app=evaluation,crucible-clean/level=jobs"], selectors


def test_the_marker_is_listed_and_checked(pytester):
    """pytest --markers lists it; a bad value, an unknown option or a positional argument
    is a usage error (exit 4) that names the test, before any test runs."""
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--markers")
    assert r.ret == 0
    assert "@pytest.mark.crucible_clean(level=none|pods|jobs|all, keep_failed=" in r.stdout.str()
    for marker, message in [
        ('level="everything"', "level must be one of none, pods, jobs, all"),
        ('keep_failed="soon"', "keep_failed must be a duration"),
        ("keep_failed=3", "keep_failed must be a duration"),
        ('strategy="newest"', "strategy must be one of"),
        ('priority="very high"', "priority must be a label value"),
        ('levels="all"', "unknown option 'levels'"),
        ('"all"', "takes keyword arguments only"),
    ]:
        pytester.makepyfile(test_m=f'''
import pytest

def test_fine():
    pass

class TestC:
    @pytest.mark.crucible_clean({marker})
    def test_bad(self):
        pass
''')
        r = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        err = r.stderr.str()
        assert r.ret == 4, (marker, r.stdout.str(), err)
        assert "crucible-clean: test_m.py::TestC::test_bad: " in err and message in err, err
        assert "Traceback" not in err and "passed" not in r.stdout.str()


ONE = '''
import kube
from conftest import record


def test_one(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("lv"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    record(j)
'''


def test_cleanup_level_alone_cleans_after_each_test(inner, ns):
    """pytest --cleanup-level=pods alone: the test's pods are cleaned after it (the job
    stays, as the level says); no cleanup flag at all: nothing is called;
    --cleanup-level=none alone is refused."""
    inner.pytester.makepyfile(test_one=ONE)
    r = inner.run("--cleanup-level=pods", *inner.scope(), "--cleanup-report=report.json")
    r.assert_outcomes(passed=1)
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    job = (inner.pytester.path / "made.txt").read_text().split()[0]
    assert job in kube.present(ns, "jobs") and _pods_of(ns, job) == []
    doc = inner.report(inner.pytester.path / "report.json")
    (per_test,) = [c for c in doc["calls"] if c["purpose"] == "per-test"]
    assert per_test["level"] == "pods" and per_test["exitCode"] == 0
    assert doc["guard"]["released"] is True
    # No cleanup flag at all: opt-in, nothing called, the objects stay.
    (inner.pytester.path / "made.txt").unlink()
    r = inner.run()
    r.assert_outcomes(passed=1)
    out = r.stdout.str()
    assert r.ret == 0 and "= crucible-clean =" not in out, out
    job = (inner.pytester.path / "made.txt").read_text().split()[0]
    kube.wait_jobs_finished(ns, [job])
    assert job in kube.present(ns, "jobs") and len(_pods_of(ns, job)) == 1
    r = inner.run("--cleanup-level=none", *inner.scope())
    assert r.ret == 4 and "--cleanup-level=none alone does nothing" in r.stderr.str()

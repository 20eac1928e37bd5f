"""Fixtures wider than a test: the labels they put on what they share, and the
evaluations they track, belong to their scope (cleaned when it ends), never to the
test that happened to set them up."""

from __future__ import annotations

import kube

MODULE_A = '''
import pytest
import kube
from conftest import record


@pytest.fixture(scope="session")
def session_job(ns, crucible_run_labels, crucible_run_id):
    assert crucible_run_labels == {"crucible-clean/run": crucible_run_id}
    j = kube.create_job(ns, kube.new_id("sess"), crucible_run_labels)
    kube.wait_jobs_finished(ns, [j])
    record("session", j)
    return j


@pytest.fixture(scope="module")
def module_job(ns, crucible_module_labels, crucible_run_id):
    assert crucible_module_labels["crucible-clean/run"] == crucible_run_id
    j = kube.create_job(ns, kube.new_id("mod"), crucible_module_labels)
    kube.wait_jobs_finished(ns, [j])
    record("module", j, crucible_module_labels["test-id"])
    return j


def test_a1(ns, module_job, session_job, crucible_test_id):
    assert module_job in kube.present(ns, "jobs")
    record("test", crucible_test_id)


def test_a2(ns, module_job, session_job):
    # test_a1's per-test cleanup left the module's job alone.
    assert module_job in kube.present(ns, "jobs")


class TestShared:
    @pytest.fixture(scope="class")
    def class_job(self, ns, crucible_class_labels):
        j = kube.create_job(ns, kube.new_id("cls"), crucible_class_labels)
        kube.wait_jobs_finished(ns, [j])
        record("class", j, crucible_class_labels["test-id"])
        return j

    def test_c1(self, ns, class_job):
        assert class_job in kube.present(ns, "jobs")

    def test_c2(self, ns, class_job, module_job):
        assert class_job in kube.present(ns, "jobs")
        assert module_job in kube.present(ns, "jobs")
'''

MODULE_B = '''
import kube


def made():
    return [line.split() for line in open("made.txt").read().splitlines()]


def test_b_after_module_a(ns):
    kinds = {row[0]: row[1] for row in made()}
    # Module a ended: its job (and the class's) were cleaned then; the session's stays.
    kube.until("module a's job cleaned", lambda: kinds["module"] not in kube.present(ns, "jobs"))
    kube.until("the class's job cleaned", lambda: kinds["class"] not in kube.present(ns, "jobs"))
    assert kinds["session"] in kube.present(ns, "jobs")
'''

def test_module_class_and_session_fixtures_label_what_they_share(inner, ns):
    """crucible_run_id / crucible_run_labels are session-scoped; module and class fixtures
    get labels with a test id of their scope: cleaned when the module or class ends, not
    after the first test; the session's objects carry the run label and go at session end."""
    inner.pytester.makepyfile(test_a=MODULE_A, test_b=MODULE_B)
    r = inner.run("--auto-cleanup", "--cleanup-level=all", *inner.scope(),
                  "--cleanup-report=report.json")
    r.assert_outcomes(passed=5)
    assert r.ret == 0, r.stdout.str()
    rows = {row[0]: row[1:] for row in
            (line.split() for line in (inner.pytester.path / "made.txt").read_text().splitlines())}
    module_job, module_id = rows["module"]
    class_job, class_id = rows["class"]
    (session_job,) = rows["session"]
    jobs = kube.present(ns, "jobs")
    assert module_job not in jobs and class_job not in jobs and session_job not in jobs
    doc = inner.report(inner.pytester.path / "report.json")
    run = doc["runId"]
    assert module_id.startswith(run + "-") and class_id.startswith(run + "-")
    assert module_id != class_id and rows["test"][0] not in (module_id, class_id)
    scope_calls = [c for c in doc["calls"] if c["purpose"] == "per-scope"]
    assert [(c["nodeid"], c["testId"]) for c in scope_calls] == [
        ("test_a.py::TestShared", class_id), ("test_a.py", module_id)]
    assert all(c["exitCode"] == 0 for c in scope_calls)
    deleted = {i["name"] for c in scope_calls for i in c["report"]["items"]
               if i["result"] == "deleted"}
    assert {module_job, class_job} <= deleted
    # The session fixture's job went with the run sweep at session end.
    sweep = [c for c in doc["calls"] if c["purpose"] == "run-sweep"]
    assert session_job in {i["name"] for i in sweep[0]["report"]["items"]
                           if i["result"] == "deleted"}
    assert "after a module or class, by its test id" in r.stdout.str()


LAZY = '''
import pytest
import requests
import crucible_clean
import kube
from conftest import record


@pytest.fixture(scope="module")
def evaluation(api_url):
    s = crucible_clean.track(requests.Session())
    return s.post(api_url + "/eval", json={}).json()["eval_id"]


def test_first_asks_lazily(request, ns):
    e = request.getfixturevalue("evaluation")
    kube.wait_jobs_finished(ns, ["evaluation-job-" + e])
    record("lazy", e)


@pytest.fixture(scope="module")
def indirect_eval(request, api_url):
    s = crucible_clean.track(requests.Session())
    return s.post(api_url + "/eval", json={"outcome": request.param}).json()["eval_id"]


@pytest.mark.parametrize("indirect_eval", ["succeed"], indirect=True)
def test_indirect(ns, indirect_eval):
    kube.wait_jobs_finished(ns, ["evaluation-job-" + indirect_eval])
    record("indirect", indirect_eval)


def test_second_still_uses_it(ns, evaluation):
    # Not cleaned when test_first_asks_lazily ended: the module's fixture owns it.
    assert "evaluation-job-" + evaluation in kube.present(ns, "jobs")
    assert kube.present(ns, "pods", "batch.kubernetes.io/job-name=evaluation-job-" + evaluation)
'''

LATER = '''
import kube


def test_later_module(ns):
    rows = dict(line.split() for line in open("made.txt").read().splitlines())
    # The lazy module's fixtures were torn down when it ended, and their evaluations cleaned.
    for e in rows.values():
        kube.until("evaluation-job-" + e + " cleaned",
                   lambda: "evaluation-job-" + e not in kube.present(ns, "jobs"))
'''


def test_a_module_fixture_reached_lazily_keeps_its_evaluation_for_the_module(
        inner, ns, eval_api):
    inner.pytester.makepyfile(test_lazy=LAZY, test_z_later=LATER)
    r = inner.run("--auto-cleanup", *inner.scope(), "--cleanup-report=report.json")
    r.assert_outcomes(passed=4)
    assert r.ret == 0, r.stdout.str()
    rows = dict(line.split() for line in
                (inner.pytester.path / "made.txt").read_text().splitlines())
    doc = inner.report(inner.pytester.path / "report.json")
    tracked = [c for c in doc["calls"] if c["purpose"] == "tracked"]
    # One call per fixture, at its teardown, charged to the fixture, not to a test.
    assert sorted(c["nodeid"] for c in tracked) == [
        "test_lazy.py (fixture evaluation)", "test_lazy.py (fixture indirect_eval)"]
    assert all(c["phase"] == "scope" and c["exitCode"] == 0 for c in tracked)
    for e in rows.values():
        assert f"evaluation-job-{e}" not in kube.present(ns, "jobs")

"""The seed's "Configuration Examples" and its CI example, each a real pytest session
against the local control plane, with decoys of other runs and unlabelled objects."""

from __future__ import annotations

import time

import kube

# Short stand-in for the examples' 30m/15m where objects must really grow old
# during the test (the API server sets creation times; they cannot be faked).
AGE = 8


def wait_older_than(seconds: float, since: float) -> None:
    left = since + seconds - time.monotonic()
    if left > 0:
        time.sleep(left)


def made(inner) -> list:
    return (inner.pytester.path / "made.txt").read_text().split()


RECORD = '''
def record(name):
    with open("made.txt", "a") as f:
        f.write(name + "\\n")
'''


def test_ci_example_hybrid_without_resourcequota(inner, ns):
    """pytest --auto-cleanup --cleanup-strategy=hybrid --cleanup-age=15m --high-watermark=0.7
    in a namespace without a ResourceQuota: exit 0, the tests' finished pods cleaned after
    each test, the watermark rule reported inactive once, decoys untouched."""
    other = kube.create_job(ns, kube.new_id("other"), {"test-id": "otherrun-t1",
                                                       "crucible-clean/run": "otherrun"})
    unlabelled = kube.create_job(ns, kube.new_id("unl"))
    running = kube.create_pod(ns, "decoy-running", finished=False)
    kube.wait_jobs_finished(ns, [other, unlabelled])
    inner.pytester.makepyfile(test_ci=RECORD + '''
import kube

def test_succeeds(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("t1"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    record(j)
    # Still running when the session ends: kept, and the summary says why.
    running = kube.create_job(ns, kube.new_id("t1run"), crucible_labels, outcome="run")
    kube.wait_job_running(ns, running)
    with open("running.txt", "w") as f:
        f.write(running)

def test_fails_its_evaluation(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("t2"), crucible_labels, outcome="fail")
    kube.wait_jobs_finished(ns, [j])
    record(j)
''')
    r = inner.run("--auto-cleanup", "--cleanup-strategy=hybrid", "--cleanup-age=15m",
                  "--high-watermark=0.7", *inner.scope(), "--cleanup-report=report.json")
    r.assert_outcomes(passed=2)
    assert r.ret == 0, r.stdout.str()
    out = r.stdout.str()
    assert "Traceback" not in out
    for job in made(inner):
        assert kube.present(ns, "pods", f"batch.kubernetes.io/job-name={job}") == []
        assert job in kube.present(ns, "jobs")  # --cleanup-level pods (the default)
    for job in (other, unlabelled):
        assert job in kube.present(ns, "jobs")
        assert len(kube.present(ns, "pods", f"batch.kubernetes.io/job-name={job}")) == 1
    assert running in kube.present(ns, "pods")
    still_running = (inner.pytester.path / "running.txt").read_text()
    (its_pod,) = kube.present(ns, "pods", f"batch.kubernetes.io/job-name={still_running}")
    assert still_running in kube.present(ns, "jobs")
    assert "kept: 1 object" in out and "not finished at session end (Running)" in out
    # The summary: the section, what was cleaned by hybrid, the inactive rule once.
    assert "crucible-clean" in out
    assert out.count("watermark rule inactive") == 1, out
    assert "no count/pods quota and no --capacity" in out
    doc = inner.report(inner.pytester.path / "report.json")
    per_test = [c for c in doc["calls"] if c["purpose"] == "per-test"]
    assert len(per_test) == 2
    assert all(c["exitCode"] == 0 and c["report"]["strategy"] == "hybrid" for c in per_test)
    assert all("--high-watermark" in c["argv"] and "15m" in c["argv"] for c in per_test)
    assert doc["totals"]["cleaned"] == 2 and doc["totals"]["failedCalls"] == 0
    assert doc["kept"] == [{"kind": "Pod", "name": its_pod,
                            "reason": "not finished at session end (Running)"}]


def test_simple_time_based(inner, ns):
    """pytest --cleanup-old --cleanup-age=…: finished objects older than the age are
    cleaned at session start and at session end, whatever their labels; running and
    young ones stay."""
    t0 = time.monotonic()
    old = kube.create_job(ns, kube.new_id("old"))
    old_other_run = kube.create_job(ns, kube.new_id("oldlab"), {"test-id": "someone-else"})
    old_running = kube.create_job(ns, kube.new_id("oldrun"), outcome="run")
    kube.wait_jobs_finished(ns, [old, old_other_run])
    kube.wait_job_running(ns, old_running)
    wait_older_than(AGE + 1, t0)
    inner.pytester.makepyfile(test_age=RECORD + f'''
import time
import kube

def test_grows_old(ns):
    j = kube.create_job(ns, kube.new_id("mid"))
    kube.wait_jobs_finished(ns, [j])
    record(j)
    time.sleep({AGE + 1})

def test_young(ns):
    j = kube.create_job(ns, kube.new_id("young"))
    kube.wait_jobs_finished(ns, [j])
    record(j)
''')
    r = inner.run("--cleanup-old", f"--cleanup-age={AGE}s", *inner.scope(),
                  "--cleanup-report=report.json")
    r.assert_outcomes(passed=2)
    assert r.ret == 0, r.stdout.str()
    mid, young = made(inner)

    def pods_of(job):
        return kube.present(ns, "pods", f"batch.kubernetes.io/job-name={job}")

    assert pods_of(old) == [] and pods_of(old_other_run) == [] and pods_of(mid) == []
    assert len(pods_of(young)) == 1
    assert len(pods_of(old_running)) == 1
    assert set(kube.present(ns, "jobs")) >= {old, old_other_run, old_running, mid, young}
    doc = inner.report(inner.pytester.path / "report.json")
    start = [c for c in doc["calls"] if c["phase"] == "sessionstart"]
    end = [c for c in doc["calls"] if c["phase"] == "sessionfinish"]
    assert [c["purpose"] for c in start] == ["age"] and [c["purpose"] for c in end] == ["age"]
    deleted = lambda c: {i["owner"] for i in c["report"]["items"] if i["result"] == "deleted"}  # noqa: E731
    assert deleted(start[0]) == {f"job/{old}", f"job/{old_other_run}"}
    assert deleted(end[0]) == {f"job/{mid}"}
    assert [c for c in doc["calls"] if c["phase"] == "test"] == []


def test_label_based_with_time_fallback(inner, ns):
    """pytest --auto-cleanup --cleanup-fallback=time: each test's objects by its label
    (here at --cleanup-level=all); at session end, objects without a test-id label older
    than --cleanup-age too. Another run's labelled objects are never taken by age."""
    t0 = time.monotonic()
    old_unlabelled = kube.create_job(ns, kube.new_id("oldunl"))
    old_bare = kube.create_pod(ns, "old-bare-failed")
    old_other_run = kube.create_job(ns, kube.new_id("oldother"),
                                    {"test-id": "otherrun-x", "crucible-clean/run": "otherrun"})
    old_running = kube.create_pod(ns, "old-bare-running", finished=False)
    kube.wait_jobs_finished(ns, [old_unlabelled, old_other_run])
    kube.wait_pods_phase(ns, [old_bare], ("Failed",))
    wait_older_than(AGE + 1, t0)
    inner.pytester.makepyfile(test_fallback=RECORD + '''
import kube

def test_labelled(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("lab"), crucible_labels)
    p = kube.create_pod(ns, "bare-" + kube.new_id(""), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    kube.wait_pods_phase(ns, [p], ("Failed",))
    record(j)
    record(p)

def test_unlabelled_young(ns):
    j = kube.create_job(ns, kube.new_id("young"))
    kube.wait_jobs_finished(ns, [j])
    record(j)
''')
    r = inner.run("--auto-cleanup", "--cleanup-fallback=time", f"--cleanup-age={AGE}s",
                  "--cleanup-level=all", *inner.scope(), "--cleanup-report=report.json")
    r.assert_outcomes(passed=2)
    assert r.ret == 0, r.stdout.str()
    labelled_job, labelled_pod, young = made(inner)
    jobs = kube.present(ns, "jobs")
    pods = kube.present(ns, "pods")
    assert labelled_job not in jobs and labelled_pod not in pods
    assert old_unlabelled not in jobs and old_bare not in pods
    assert old_other_run in jobs and young in jobs and old_running in pods
    doc = inner.report(inner.pytester.path / "report.json")
    fallback = [c for c in doc["calls"] if c["purpose"] == "fallback"]
    assert len(fallback) == 1 and fallback[0]["report"]["strategy"] == "fallback"
    assert {i["name"] for i in fallback[0]["report"]["items"] if i["result"] == "deleted"} >= {
        old_unlabelled, old_bare}


def test_resource_aware_watermark(inner, ns):
    """pytest --cleanup-strategy=watermark --high-watermark=0.8 with a count/pods quota of 10:
    checked after each test; below 80% nothing goes, at 90% the oldest finished pods go
    until usage is at or below the low watermark (0.5). Running pods stay."""
    kube.create({"apiVersion": "v1", "kind": "ResourceQuota",
                 "metadata": {"name": "pods", "namespace": ns},
                 "spec": {"hard": {"count/pods": "10"}}})
    kube.until("the quota's status", lambda: kube.get_json("resourcequota", "pods", "-n", ns)
               .get("status", {}).get("hard"))
    decoys = [kube.create_pod(ns, f"decoy-{i}") for i in range(6)]
    running = kube.create_pod(ns, "decoy-running", finished=False)
    kube.wait_pods_phase(ns, decoys, ("Failed",))
    inner.pytester.makepyfile(test_watermark=RECORD + '''
import kube

def test_a_below_the_watermark(ns):
    pass

def test_b_reaches_it(ns, crucible_labels):
    jobs = [kube.create_job(ns, kube.new_id("w"), crucible_labels) for _ in range(2)]
    kube.wait_jobs_finished(ns, jobs)
    for j in jobs:
        record(j)
''')
    r = inner.run("--cleanup-strategy=watermark", "--high-watermark=0.8", *inner.scope(),
                  "--cleanup-report=report.json")
    r.assert_outcomes(passed=2)
    assert r.ret == 0, r.stdout.str()
    pods = kube.present(ns, "pods")
    assert len(pods) == 5, pods
    assert running in pods
    assert len([p for p in pods if p.startswith("decoy-") and p != running]) == 2
    doc = inner.report(inner.pytester.path / "report.json")
    checks = [c for c in doc["calls"] if c["purpose"] == "strategy"]
    assert [c["nodeid"].split("::")[1] for c in checks] == ["test_a_below_the_watermark",
                                                           "test_b_reaches_it"]
    assert checks[0]["report"]["summary"]["deleted"] == 0
    assert checks[1]["report"]["summary"]["deleted"] == 4
    assert "watermark" in r.stdout.str()


def test_dry_run_deletes_nothing_and_reports(inner, ns):
    """--cleanup-dry-run: every call previews; nothing is deleted, no guard or Lease."""
    inner.pytester.makepyfile(test_dry=RECORD + '''
import kube

def test_one(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("dry"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    record(j)
''')
    r = inner.run("--auto-cleanup", "--cleanup-level=all", "--cleanup-dry-run", *inner.scope(),
                  "--cleanup-report=report.json")
    r.assert_outcomes(passed=1)
    assert r.ret == 0
    (job,) = made(inner)
    assert job in kube.present(ns, "jobs")
    assert len(kube.present(ns, "pods", f"batch.kubernetes.io/job-name={job}")) == 1
    assert kube.names(ns, "leases") == []
    doc = inner.report(inner.pytester.path / "report.json")
    assert doc["dryRun"] is True and doc["guard"] is None
    assert doc["totals"]["wouldClean"] >= 1 and doc["totals"]["cleaned"] == 0
    assert all("--dry-run" in c["argv"] for c in doc["calls"])
    assert "would clean" in r.stdout.str()

"""Per-test identity, the options (flags and ini), finding the binary, and failures that
are reported in the summary rather than raised."""

from __future__ import annotations

import json

import kube
from crucible_clean import options

FLAGS = [flag for flag, *_ in options.OPTIONS]

IDENTITY = '''
import os
import re
import json

seen = []


def test_one(crucible_test_id, crucible_labels, crucible_run_id):
    assert os.environ["TEST_LABEL_ID"] == crucible_test_id
    assert crucible_labels == {"test-id": crucible_test_id, "crucible-clean/run": crucible_run_id}
    assert re.fullmatch(r"[a-z0-9]{12}-[0-9a-f]{10}", crucible_test_id)
    assert crucible_test_id.startswith(crucible_run_id + "-")
    seen.append(crucible_test_id)


def test_two():
    # Without asking for a fixture the test still has its id in TEST_LABEL_ID.
    seen.append(os.environ["TEST_LABEL_ID"])
    assert seen[0] != seen[1]
    with open("ids.json", "a") as f:
        f.write(json.dumps(seen) + "\\n")
'''

AFTER = '''
def pytest_sessionfinish(session):
    import os
    with open("after.txt", "w") as f:
        f.write(os.environ.get("TEST_LABEL_ID", "<unset>"))
'''


def test_test_id_exported_during_each_test_and_restored(pytester, monkeypatch):
    """Each test: TEST_LABEL_ID = session id + stable hash of its node id, only while it
    runs; the previous value comes back. Without cleanup flags no binary is needed."""
    monkeypatch.setenv("TEST_LABEL_ID", "previous-value")
    monkeypatch.setenv("CRUCIBLE_CLEAN_BIN", "/nonexistent/kubectl-crucible-clean")
    pytester.makepyfile(test_ids=IDENTITY)
    pytester.makeconftest(AFTER)
    for _ in range(2):
        r = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        r.assert_outcomes(passed=2)
        assert (pytester.path / "after.txt").read_text() == "previous-value"
        assert "= crucible-clean =" not in r.stdout.str()  # cleanup off: no section
    runs = [json.loads(line) for line in (pytester.path / "ids.json").read_text().splitlines()]
    (a1, b1), (a2, b2) = runs
    # A new session id per run, the same hash for the same test.
    assert a1[:12] != a2[:12] and a1[13:] == a2[13:] and b1[13:] == b2[13:]


def test_flags_are_listed_in_help(pytester):
    r = pytester.runpytest_subprocess("--help")
    out = r.stdout.str()
    assert "crucible-clean" in out
    for flag in FLAGS:
        assert flag in out, flag
    for _, ini, *_ in options.OPTIONS:
        assert ini in out, ini


def test_missing_binary_is_a_clear_usage_error(pytester, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_CLEAN_BIN", "/nonexistent/kubectl-crucible-clean")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    r = pytester.runpytest_subprocess("--auto-cleanup")
    assert r.ret == 4  # pytest's usage error: no test ran
    err = r.stderr.str()
    assert "CRUCIBLE_CLEAN_BIN=/nonexistent/kubectl-crucible-clean is not an executable file" in err
    assert "Traceback" not in err + r.stdout.str()
    # Nothing runs with --help or --collect-only: no binary needed.
    assert pytester.runpytest_subprocess("--auto-cleanup", "--help").ret == 0
    assert pytester.runpytest_subprocess("--auto-cleanup", "--collect-only").ret == 0


def test_flags_that_would_do_nothing_are_refused(pytester):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    for args, message in [
        (["--cleanup-level=none"], "--cleanup-level=none alone does nothing"),
        (["--cleanup-keep-failed"], "--cleanup-keep-failed does nothing without --auto-cleanup"),
        (["--auto-cleanup", "--cleanup-keep-failed=soon"], "must be a duration such as 30m"),
        (["--auto-cleanup", "--cleanup-keep-failed", "test_x.py"],
         "write --cleanup-keep-failed=DUR"),
        (["--auto-cleanup", "--high-watermark=0.7"], "--high-watermark needs --cleanup-strategy"),
        (["--cleanup-fallback=time"], "--cleanup-fallback does nothing without"),
        (["--cleanup-old", "--cleanup-fallback=time"], "--cleanup-fallback needs --auto-cleanup"),
        (["--auto-cleanup", "--cleanup-age=5m"], "--cleanup-age needs"),
        (["--cleanup-strategy=watermark", "--high-watermark=1.5"], "must be in (0, 1]"),
        (["--cleanup-strategy=hybrid", "--high-watermark=0.4"], "must be below --high-watermark"),
        (["--cleanup-old", "--cleanup-age=soon"], "must be a duration"),
    ]:
        r = pytester.runpytest_subprocess(*args)
        assert r.ret == 4, args
        assert message in r.stderr.str(), (args, r.stderr.str())


def test_ini_options(inner, ns):
    """Every flag is also an ini option: [pytest] auto_cleanup / cleanup_level / namespace…"""
    inner.pytester.makeini(f"""
[pytest]
auto_cleanup = true
cleanup_level = all
cleanup_namespace = {ns}
cleanup_kubeconfig = {inner.kubeconfig}
cleanup_report = report.json
""")
    inner.pytester.makepyfile(test_ini='''
import kube

def test_one(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("ini"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    with open("made.txt", "w") as f:
        f.write(j)
''')
    r = inner.run()
    r.assert_outcomes(passed=1)
    assert r.ret == 0, r.stdout.str()
    job = (inner.pytester.path / "made.txt").read_text()
    assert job not in kube.present(ns, "jobs")  # cleanup_level = all took the job
    doc = inner.report(inner.pytester.path / "report.json")
    assert doc["namespace"] == ns and doc["totals"]["cleaned"] >= 1


def test_failing_calls_are_reported_not_raised(inner, ns):
    """An unusable context: every call fails (exit 4). The tests pass, the summary names
    the failures, no traceback, and the session fails (exit status 1)."""
    inner.pytester.makepyfile(test_f="def test_x(crucible_labels):\n    pass\n")
    r = inner.run("--auto-cleanup", "--cleanup-context=no-such-context", *inner.scope(),
                  "--cleanup-report=report.json")
    r.assert_outcomes(passed=1)
    assert r.ret == 1
    out = r.stdout.str()
    assert "Traceback" not in out + r.stderr.str()
    assert "failures:" in out and "(status 4)" in out
    # Explained once (the guard's failure); the calls after it are skipped, not run.
    assert out.count("no-such-context") == 1, out
    assert "3 later cleanup calls were skipped" in out
    assert "cleanup failed, so the session fails" in out
    doc = inner.report(inner.pytester.path / "report.json")
    assert doc["totals"]["skippedCalls"] == 3 and doc["guard"]["error"]
    assert kube.names(ns, "leases") == []

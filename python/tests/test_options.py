"""Options as configuration files give them: relative paths, typed values in pytest 9's
native table, bad values; and the commands that run no test."""

from __future__ import annotations

import shutil

import pytest

import kube

ONE_TEST = '''
import kube
from conftest import record


def test_one(ns, crucible_labels):
    j = kube.create_job(ns, kube.new_id("p"), crucible_labels)
    kube.wait_jobs_finished(ns, [j])
    record(j)
'''


def test_relative_ini_paths_resolve_from_the_config_file(inner, ns, monkeypatch):
    """cleanup_kubeconfig = "kc" and cleanup_report in pyproject.toml, pytest started in
    tests/: both resolve from the directory of pyproject.toml, not the current one."""
    root = inner.pytester.path
    shutil.copy(inner.kubeconfig, root / "kc")
    inner.pytester.makepyprojecttoml(f'''
[tool.pytest.ini_options]
auto_cleanup = true
cleanup_level = "all"
cleanup_namespace = "{ns}"
cleanup_kubeconfig = "kc"
cleanup_report = "reports/cleanup.json"
''')
    (root / "tests").mkdir()
    (root / "tests" / "test_p.py").write_text(ONE_TEST)
    monkeypatch.chdir(root / "tests")
    r = inner.run()
    r.assert_outcomes(passed=1)
    assert r.ret == 0, r.stdout.str()
    assert not (root / "tests" / "reports").exists()
    doc = inner.report(root / "reports" / "cleanup.json")
    assert doc["totals"]["failedCalls"] == 0 and doc["totals"]["cleaned"] >= 1
    assert all(c["argv"][c["argv"].index("--kubeconfig") + 1] == str(root / "kc")
               for c in doc["calls"])
    job = (root / "tests" / "made.txt").read_text().split()[0]
    assert job not in kube.present(ns, "jobs")


def test_pytest9_native_table_takes_numbers_and_booleans(inner, ns):
    """[tool.pytest] (pytest 9's native TOML table): high_watermark = 0.7 is a float and
    auto_cleanup = true a boolean, not strings. (Before pytest 9, the same values in
    [tool.pytest.ini_options], which pytest reads as strings.)"""
    table = "tool.pytest" if pytest.version_tuple >= (9,) else "tool.pytest.ini_options"
    inner.pytester.makepyprojecttoml(f'''
[{table}]
auto_cleanup = true
cleanup_strategy = "hybrid"
high_watermark = 0.7
low_watermark = 0.25
cleanup_dry_run = true
cleanup_namespace = "{ns}"
cleanup_kubeconfig = "{inner.kubeconfig}"
cleanup_report = "report.json"
''')
    inner.pytester.makepyfile(test_x="def test_x(crucible_labels):\n    pass\n")
    r = inner.run()
    r.assert_outcomes(passed=1)
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    doc = inner.report(inner.pytester.path / "report.json")
    (strategy,) = [c for c in doc["calls"] if c["purpose"] == "per-test"]
    argv = strategy["argv"]
    assert argv[argv.index("--high-watermark") + 1] == "0.7"
    assert argv[argv.index("--low-watermark") + 1] == "0.25"
    assert doc["dryRun"] is True and doc["guard"] is None


def test_bad_ini_values_are_usage_errors_that_name_the_option(pytester):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    for ini, message in [
        ("[pytest]\nauto_cleanup = maybe\n", "ini option auto_cleanup"),
        ("[pytest]\nauto_cleanup = true\ncleanup_strategy = watermark\nhigh_watermark = lots\n",
         "ini option high_watermark"),
        ("[pytest]\ncleanup_old = true\ncleanup_level = most\n", "cleanup_level must be one of"),
    ]:
        pytester.makeini(ini)
        r = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        assert r.ret == 4, (ini, r.stdout.str(), r.stderr.str())
        assert message in r.stderr.str(), (ini, r.stderr.str())
        assert "Traceback" not in r.stderr.str()
    if pytest.version_tuple < (9,):
        return  # no native [tool.pytest] table before pytest 9
    pytester.makepyprojecttoml('[tool.pytest]\nauto_cleanup = "yes"\n')
    (pytester.path / "tox.ini").unlink(missing_ok=True)
    (pytester.path / "pytest.ini").unlink(missing_ok=True)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert r.ret == 4 and "ini option auto_cleanup" in r.stderr.str(), r.stderr.str()


def test_commands_that_run_no_test_need_no_binary_and_no_cluster(pytester, monkeypatch):
    """--help, --fixtures, --markers, --setup-plan, --fixtures-per-test, --collect-only:
    with cleanup on, a missing binary and a bad ini value, each exits 0 and prints no
    crucible-clean section (no guard, no sweep, no failure)."""
    monkeypatch.setenv("CRUCIBLE_CLEAN_BIN", "/nonexistent/kubectl-crucible-clean")
    pytester.makeini("[pytest]\nauto_cleanup = true\nhigh_watermark = 7\n")
    pytester.makepyfile(test_x="def test_x(crucible_labels):\n    pass\n")
    for flag in ["--help", "--fixtures", "--markers", "--setup-plan", "--fixtures-per-test",
                 "--collect-only"]:
        r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--auto-cleanup", flag)
        out = r.stdout.str() + r.stderr.str()
        assert r.ret == 0, (flag, out)
        assert "= crucible-clean =" not in out and "Traceback (most" not in out, (flag, out)
        assert "kubectl-crucible-clean" not in r.stderr.str(), (flag, out)
    # The fixtures are listed, the session-scoped ones as such.
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fixtures")
    out = r.stdout.str()
    for name in ["crucible_labels", "crucible_run_labels", "crucible_module_labels",
                 "crucible_class_labels", "crucible_run_id", "crucible_tracker"]:
        assert name in out, name
    assert "crucible_run_id [session scope]" in out


def test_a_report_that_cannot_be_written_is_explained(inner, ns):
    """--cleanup-report naming a directory: the session fails with the explanation line,
    and no <dir>.tmp is left."""
    (inner.pytester.path / "out").mkdir()
    inner.pytester.makepyfile(test_x="def test_x(crucible_labels):\n    pass\n")
    r = inner.run("--auto-cleanup", *inner.scope(), "--cleanup-report=out")
    r.assert_outcomes(passed=1)
    assert r.ret == 1
    out = r.stdout.str()
    assert "failures:" in out and "cannot write the report" in out and "is a directory" in out
    assert "cleanup failed, so the session fails (exit status 1)" in out, out
    assert not (inner.pytester.path / "out.tmp").exists()

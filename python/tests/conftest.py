"""Tests of the pytest plugin against the local control plane (``CRUCIBLE_TEST_CLUSTER``).

Each test gets its own namespace and runs real pytest sessions with ``pytester``.
No test may skip: a skip fails the run (the Python tests must run in CI or fail).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, Iterator, List, Tuple

import pytest

pytest_plugins = ["pytester"]

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import kube  # noqa: E402

_skipped: List[str] = []
_figures: List[Tuple[str, str]] = []


def pytest_configure(config: pytest.Config) -> None:
    d = os.environ.get("CRUCIBLE_TEST_CLUSTER")
    if not d or not os.path.isfile(os.path.join(d, "kubeconfig")):
        raise pytest.UsageError(
            "CRUCIBLE_TEST_CLUSTER must name a running local control plane "
            "(tests/cluster/up DIR); scripts/test sets it")
    os.environ["KUBECONFIG"] = os.path.join(d, "kubeconfig")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
    if rep.skipped:
        _skipped.append(item.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _skipped and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if _figures:
        terminalreporter.section("figures")
        for name, value in _figures:
            terminalreporter.write_line(f"{name}: {value}")
    if _skipped:
        terminalreporter.section("skipped tests fail this run")
        for n in _skipped:
            terminalreporter.write_line(n)


@pytest.fixture
def figure():
    """Records a measured figure, printed in the run's "figures" section."""
    def record(name: str, value: str) -> None:
        _figures.append((name, value))
    return record


@pytest.fixture
def kubeconfig() -> str:
    return os.environ["KUBECONFIG"]


@pytest.fixture
def ns(request) -> str:
    """A fresh namespace for this test; deleted afterwards unless the test failed."""
    name = f"py-{request.node.name.replace('_', '-')[:40].strip('-').lower()}-{kube.new_id('')}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    kube.kubectl("create", "namespace", name)
    kube.kubectl("label", "namespace", name, "crucible.test/namespace=true")
    yield name
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"namespace {name} kept (the test failed)")
    else:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


INNER_CONFTEST = '''
import os, sys
sys.path.insert(0, {tests!r})
import kube
import pytest

NS = {ns!r}


@pytest.fixture(scope="session")
def ns():
    return NS


@pytest.fixture(scope="session")
def api_url():
    return os.environ["CC_API_URL"]


def record(*words):
    with open("made.txt", "a") as f:
        f.write(" ".join(words) + "\\n")
'''


class Inner:
    """Runs real pytest sessions in a pytester directory against one namespace."""

    def __init__(self, pytester: pytest.Pytester, ns: str, kubeconfig: str) -> None:
        self.pytester = pytester
        self.ns = ns
        self.kubeconfig = kubeconfig
        pytester.makeconftest(INNER_CONFTEST.format(tests=HERE, ns=ns))

    def scope(self) -> List[str]:
        return [f"--cleanup-namespace={self.ns}", f"--cleanup-kubeconfig={self.kubeconfig}"]

    def run(self, *args: str, timeout: float = 300) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *args,
                                                  timeout=timeout)

    def report(self, path) -> Dict:
        import json
        with open(path) as f:
            return json.load(f)


@pytest.fixture
def inner(pytester: pytest.Pytester, ns: str, kubeconfig: str) -> Inner:
    return Inner(pytester, ns, kubeconfig)


@pytest.fixture
def silent_kubeconfig(tmp_path) -> Iterator[str]:
    """A kubeconfig whose server is the fault suite's silent one
    (tests/support/faultproxy.py --silent --tls): it completes TLS, reads each request
    and never answers."""
    script = os.path.join(HERE, "..", "..", "tests", "support", "faultproxy.py")
    proc = subprocess.Popen([sys.executable, script, "--silent", "--tls"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline().decode().strip()
        assert line.startswith("listening https://"), f"the silent server did not start: {line!r}"
        url = line[len("listening "):]
        path = tmp_path / "silent.kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: silent\n  cluster:\n"
            f"    server: {url}\n    insecure-skip-tls-verify: true\n"
            "users:\n- name: nobody\n  user: {}\ncontexts:\n- name: silent\n"
            "  context: {cluster: silent, user: nobody, namespace: crucible}\n"
            "current-context: silent\n")
        yield str(path)
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def eval_api(ns: str, monkeypatch):
    api = kube.EvalAPI(ns)
    monkeypatch.setenv("CC_API_URL", api.url)
    yield api
    api.close()

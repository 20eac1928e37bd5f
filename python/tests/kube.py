"""Test helpers: the local control plane through kubectl, evaluation Jobs and bare pods
as tests/support/objects.rs makes them (kwok runs them), and a tiny evaluation API.

Imported by the tests and by the pytest sessions they start (through their conftest).
The cluster: ``KUBECONFIG`` (set from ``CRUCIBLE_TEST_CLUSTER`` by conftest.py).
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import subprocess
import threading
import time
from typing import Any, Dict, Iterable, List, Optional

# kwok: a pod with this label fails ~1-1.5 s after it runs; this annotation delays
# a Job's pod's success (24h: it stays Running).
KWOK_FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"
KWOK_COMPLETE_DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"
WAIT_SECONDS = 60


def kubectl(*args: str, input: Optional[str] = None, check: bool = True) -> str:
    p = subprocess.run(["kubectl", "--request-timeout=20s", *args], input=input,
                       capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout


def get_json(*args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def create(obj: Dict[str, Any]) -> None:
    kubectl("create", "-f", "-", input=json.dumps(obj))


def job(ns: str, eval_id: str, labels: Optional[Dict[str, str]] = None,
        outcome: str = "succeed") -> Dict[str, Any]:
    """``evaluation-job-<eval_id>``: app=evaluation, eval-id and ``labels`` on the Job and its pod.
    outcome: succeed | fail | run (stays Running)."""
    meta_labels = {"app": "evaluation", "eval-id": eval_id, **(labels or {})}
    pod_labels = dict(meta_labels)
    pod_annotations: Dict[str, str] = {}
    if outcome == "fail":
        pod_labels[KWOK_FAIL_LABEL] = "true"
    elif outcome == "run":
        pod_annotations[KWOK_COMPLETE_DELAY] = "24h"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"evaluation-job-{eval_id}", "namespace": ns, "labels": meta_labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "evaluation", "image": "crucible.invalid/evaluation:test",
                                    "command": ["run-evaluation", eval_id]}],
                },
            },
        },
    }


def bare_pod(ns: str, name: str, labels: Optional[Dict[str, str]] = None,
             finished: bool = True) -> Dict[str, Any]:
    """A pod without a Job: Failed ~1-1.5 s after it runs when ``finished``, else Running."""
    pod_labels = {"app": "evaluation", **(labels or {})}
    if finished:
        pod_labels[KWOK_FAIL_LABEL] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": pod_labels},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "evaluation", "image": "crucible.invalid/evaluation:test"}],
        },
    }


def create_job(ns: str, eval_id: str, labels: Optional[Dict[str, str]] = None,
               outcome: str = "succeed") -> str:
    create(job(ns, eval_id, labels, outcome))
    return f"evaluation-job-{eval_id}"


def create_pod(ns: str, name: str, labels: Optional[Dict[str, str]] = None,
               finished: bool = True) -> str:
    create(bare_pod(ns, name, labels, finished))
    return name


def new_id(prefix: str = "e") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def until(what: str, check, timeout: float = WAIT_SECONDS, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def _job_finished(j: Dict[str, Any]) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in j.get("status", {}).get("conditions", []) or [])


def wait_jobs_finished(ns: str, names: Iterable[str]) -> None:
    names = set(names)

    def done() -> bool:
        jobs = {j["metadata"]["name"]: j for j in get_json("jobs", "-n", ns)["items"]}
        return all(n in jobs and _job_finished(jobs[n]) for n in names)

    until(f"jobs {sorted(names)} finished", done)


def pods_by_job(ns: str, job_name: str) -> List[str]:
    return sorted(p["metadata"]["name"] for p in get_json(
        "pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={job_name}")["items"])


def wait_pods_phase(ns: str, names: Iterable[str], phases=("Succeeded", "Failed")) -> None:
    names = set(names)

    def done() -> bool:
        pods = {p["metadata"]["name"]: p for p in get_json("pods", "-n", ns)["items"]}
        return all(n in pods and pods[n].get("status", {}).get("phase") in phases for n in names)

    until(f"pods {sorted(names)} in {phases}", done)


def wait_job_running(ns: str, job_name: str) -> None:
    until(f"a running pod of {job_name}", lambda: any(
        p.get("status", {}).get("phase") == "Running"
        for p in get_json("pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={job_name}")["items"]))


def names(ns: str, kind: str, selector: Optional[str] = None) -> List[str]:
    """Names of the objects of ``kind`` present (terminating ones too)."""
    args = [kind, "-n", ns] + (["-l", selector] if selector else [])
    return sorted(o["metadata"]["name"] for o in get_json(*args)["items"])


def present(ns: str, kind: str, selector: Optional[str] = None) -> List[str]:
    """Names of the objects of ``kind`` present and not terminating."""
    args = [kind, "-n", ns] + (["-l", selector] if selector else [])
    return sorted(o["metadata"]["name"] for o in get_json(*args)["items"]
                  if not o["metadata"].get("deletionTimestamp"))


class EvalAPI:
    """A tiny evaluation API on 127.0.0.1: ``POST /eval`` (and ``POST /submit``, a path
    the tracker's default pattern does not match) creates ``evaluation-job-<eval_id>`` in
    its namespace and answers ``{"eval_id": …}``. The JSON body may give ``labels`` and
    ``outcome``."""

    def __init__(self, namespace: str) -> None:
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                if self.path not in ("/eval", "/submit"):
                    self.send_response(404)
                    self.end_headers()
                    return
                eval_id = new_id("api")
                create_job(api.namespace, eval_id, body.get("labels"), body.get("outcome", "succeed"))
                api.created.append(eval_id)
                data = json.dumps({"eval_id": eval_id, "status": "submitted"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.namespace = namespace
        self.created: List[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def cluster_kubeconfig() -> str:
    d = os.environ.get("CRUCIBLE_TEST_CLUSTER")
    if not d:
        raise RuntimeError("CRUCIBLE_TEST_CLUSTER is not set")
    return os.path.join(d, "kubeconfig")

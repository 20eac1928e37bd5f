"""Run ids and per-test ids: valid Kubernetes label values, stable per node id."""

from __future__ import annotations

import hashlib
import re
import secrets

# A label value: at most 63 characters, alphanumerics with '-', '_', '.' inside.
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Run ids also name a Lease (crucible-clean-run-<run>): lowercase DNS label characters.
_RUN_ID = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

RUN_LABEL = "crucible-clean/run"
TEST_LABEL = "test-id"
ENV_VAR = "TEST_LABEL_ID"


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


def is_run_id(value: str) -> bool:
    return 0 < len(value) <= 40 and bool(_RUN_ID.match(value))


def new_run_id() -> str:
    """A fresh session (run) id: 12 lowercase hex characters."""
    return secrets.token_hex(6)


def node_hash(nodeid: str) -> str:
    """10 hex characters of SHA-256 of the node id: the same test, the same hash."""
    return hashlib.sha256(nodeid.encode("utf-8")).hexdigest()[:10]


def test_id(run_id: str, nodeid: str) -> str:
    """``<run id>-<hash of node id>``: unique per session and test, a valid label value."""
    tid = f"{run_id}-{node_hash(nodeid)}"
    assert is_label_value(tid), tid
    return tid

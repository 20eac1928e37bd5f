"""Whether the cluster answers: once a call (or the guard) finds it unreachable, later
calls are skipped instead of each waiting out its request timeout.

A silent API server costs every call the binary's request timeout (30 s by default):
after each of 200 tests that is 100 minutes of waiting for nothing. The first such
failure is reported in full; the calls after it are recorded as skipped, and one call
is let through again every :data:`RECHECK_SECONDS`, so a cluster that comes back is
used again.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from .binary import Call

# The binary's exit code for "cluster unreachable, not answering, unusable kubeconfig or
# context, authentication failed, or forbidden by RBAC".
CLUSTER_EXIT = 4
RECHECK_SECONDS = 300.0


def unusable(exit_code: Optional[int], error: str) -> bool:
    """An answer that every later call would get too: exit 4 but an RBAC refusal (which
    may concern one verb or resource only), or no answer at all."""
    if exit_code == CLUSTER_EXIT:
        return "forbidden" not in error.lower()
    return exit_code is None and error.startswith("no answer within")


class Reach:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        # The first failure that made the cluster count as unreachable, while it does.
        self.reason: Optional[str] = None
        self.last_try = 0.0

    @property
    def down(self) -> bool:
        return self.reason is not None

    def allows(self) -> bool:
        """Whether the next call should run: the cluster answered last time, or the
        last try is long enough ago to try again."""
        return self.reason is None or self.clock() - self.last_try >= RECHECK_SECONDS

    def failed(self, why: str) -> None:
        self.last_try = self.clock()
        if self.reason is None:
            self.reason = why

    def observe(self, call: Call) -> None:
        """Updates the state from a call that ran."""
        if call.failed and unusable(call.exit_code, call.error or ""):
            self.failed(call.error or "")
        elif call.exit_code is not None:
            self.reason = None  # it answered (even with another error)

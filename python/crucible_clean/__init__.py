"""crucible-clean for pytest: cleans up the evaluation pods and jobs a test run leaves behind.

The pytest plugin (``crucible_clean.plugin``, registered through the ``pytest11``
entry point) drives the ``kubectl-crucible-clean`` binary installed with this
package. See docs/pytest.md in the repository.
"""

from .binary import BinaryNotFound, find_binary
from .ids import RUN_LABEL, TEST_LABEL
from .tracker import Tracker, track

__all__ = ["BinaryNotFound", "RUN_LABEL", "TEST_LABEL", "Tracker", "find_binary", "track"]

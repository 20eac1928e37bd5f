"""crucible-clean for pytest: cleans up the evaluation pods and jobs a test run leaves behind.

The pytest plugin (``crucible_clean.plugin``, registered through the ``pytest11``
entry point) drives the ``kubectl-crucible-clean`` binary installed with this
package. See docs/pytest.md in the repository.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from .binary import BinaryNotFound, find_binary
from .ids import RUN_LABEL, TEST_LABEL
from .tracker import Tracker, track

try:
    # The package's version is Cargo.toml's (maturin takes it from there).
    __version__ = _version("crucible-clean")
except PackageNotFoundError:  # imported from a checkout, not installed
    __version__ = "unknown"

__all__ = ["BinaryNotFound", "RUN_LABEL", "TEST_LABEL", "Tracker", "__version__", "find_binary",
           "track"]

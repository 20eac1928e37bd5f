"""The package installs into a fresh virtualenv with one ``pip install``: the pytest
plugin (entry point pytest11) and the kubectl-crucible-clean binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv

from crucible_clean import options

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_one_pip_install_into_a_fresh_virtualenv(tmp_path, figure):
    import time

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    env = dict(os.environ)
    env.pop("CRUCIBLE_CLEAN_BIN", None)
    env.pop("VIRTUAL_ENV", None)
    # The test builds the binary in the dev profile, reusing the repository's target/
    # (a release build takes minutes on 2 cores); users get the default release build.
    env["MATURIN_PEP517_ARGS"] = "--profile dev"
    t0 = time.monotonic()
    p = subprocess.run([str(bin_dir / "pip"), "install", "--disable-pip-version-check",
                        os.path.join(REPO, "python")], env=env, capture_output=True, text=True,
                       timeout=1800)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    figure("pip install ./python into a fresh virtualenv (dev profile, warm target/)",
           f"{time.monotonic() - t0:.1f} s")
    binary = bin_dir / "kubectl-crucible-clean"
    v = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.startswith("kubectl crucible-clean "), v
    h = subprocess.run([str(bin_dir / "pytest"), "--help"], env=env, capture_output=True,
                       text=True, cwd=tmp_path)
    assert h.returncode == 0, h.stderr
    for flag, *_ in options.OPTIONS:
        assert flag in h.stdout, flag
    # The plugin finds the binary next to the environment's Python, not on PATH.
    env["PATH"] = "/usr/bin:/bin"
    f = subprocess.run([str(bin_dir / "python"), "-c",
                        "import crucible_clean; print(crucible_clean.find_binary())"],
                       env=env, capture_output=True, text=True, cwd=tmp_path)
    assert f.stdout.strip() == str(binary), f.stderr
    assert sys.executable != str(bin_dir / "python")
    shutil.rmtree(env_dir)  # a dev-profile binary is large; pytest keeps old temp dirs


def test_the_package_version_is_cargo_tomls():
    """Single-sourced: maturin takes the version from Cargo.toml (pyproject.toml
    declares it dynamic), and the package reports it."""
    import importlib.metadata
    import re

    import crucible_clean

    with open(os.path.join(REPO, "Cargo.toml")) as f:
        cargo = re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)
    assert importlib.metadata.version("crucible-clean") == cargo
    assert crucible_clean.__version__ == cargo
    with open(os.path.join(REPO, "python", "pyproject.toml")) as f:
        pyproject = f.read()
    assert 'dynamic = ["version"]' in pyproject
    assert not re.search(r"^version\s*=", pyproject, re.M), "a second version in pyproject.toml"

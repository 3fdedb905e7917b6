"""Shared fixtures: the repository root and small generated datasets (real mp4 files)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


def load_script(relative_path: str):
    """Import a script that is not in a package (``tools/*.py``, ``benchmarks/*.py``, a test
    file) by its path relative to the repository root; returns the module."""
    path = REPO_ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_python(args, cwd=None, env=None, timeout=1500, check=True):
    """Run ``python ARGS`` (this interpreter) and return the CompletedProcess with text output.

    On failure the combined output is part of the assertion message.
    """
    full_env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **(env or {}))
    proc = subprocess.run([sys.executable, *args], cwd=cwd or REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'python {" ".join(map(str, args))} exited {proc.returncode}\n'
                             f'--- stdout ---\n{proc.stdout[-6000:]}\n'
                             f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


@pytest.fixture(scope='session')
def motion_clips(tmp_path_factory):
    """A small generated motion dataset: 4 classes, 32x32, 32 frames, 2 train / 1 val per class.

    Returns the dataset directory (``train.txt``, ``val.txt``, ``videos/``).
    """
    from vmae2_mm.testing.recognition import generate_motion_dataset
    out = tmp_path_factory.mktemp('motion')
    generate_motion_dataset(str(out), num_classes=4, train_per_class=2, val_per_class=1,
                            num_frames=32, size=32, seed=123)
    return out


@pytest.fixture(autouse=True, scope='session')
def mmaction_default_scope():
    """Components built outside a Runner resolve in mmaction's registries, as in configs."""
    import vmae2_mm  # noqa: F401  (compat fixes + registration)
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')


@pytest.fixture(autouse=True)
def restore_mmaction_default_scope(mmaction_default_scope):
    """A Runner or strategy built inside a test makes its own scope current (e.g. 'mmengine');
    put 'mmaction' back so later tests do not depend on test order."""
    yield
    from mmengine.registry import DefaultScope, init_default_scope
    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name != 'mmaction':
        init_default_scope('mmaction')

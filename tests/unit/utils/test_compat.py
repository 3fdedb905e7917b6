"""Each stack workaround: the upstream problem exists without the fix, and the fix removes it.

Every check runs in a fresh interpreter (``import vmae2_mm`` applies all fixes in this one).
"""
import textwrap

import pytest

from tests.conftest import REPO_ROOT, run_python

COMPAT_PATH = str(REPO_ROOT / 'vmae2_mm' / 'utils' / 'compat.py')

# Applies every fix except the one named, so the remaining failure is the one under test.
# compat.py is loaded by path: importing the vmae2_mm package would apply every fix.
APPLY_ALL_BUT = textwrap.dedent('''
    import importlib.util
    spec = importlib.util.spec_from_file_location('vmae2_compat', {path!r})
    compat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compat)
    skip = {skip!r}
    for name in ('alias_importlib_metadata', 'stub_missing_mmaction_drn',
                 'disable_mmaction_multimodal_without_timm',
                 'torch_load_safe_globals', 'numpy2_removed_aliases'):
        if name != skip:
            getattr(compat, name)()
''')


def _check(code: str, skip: str, expect_fail: bool, needle: str = ''):
    src = APPLY_ALL_BUT.format(skip=skip, path=COMPAT_PATH) + textwrap.dedent(code)
    proc = run_python(['-c', src], check=False, timeout=300)
    out = proc.stdout + proc.stderr
    if expect_fail:
        assert proc.returncode != 0, f'expected the upstream failure without {skip}:\n{out}'
        assert needle in out, out[-3000:]
    else:
        assert proc.returncode == 0, out[-3000:]


def test_drn_stub_needed_and_sufficient():
    code = 'import mmaction.models\nprint("ok")\n'
    _check(code, 'stub_missing_mmaction_drn', True, 'mmaction.models.localizers.drn')
    _check(code, '', False)


BLOCK_IMPORTLIB_METADATA = '''
import sys, importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == 'importlib_metadata':
            raise ModuleNotFoundError("No module named 'importlib_metadata'")
sys.meta_path.insert(0, _Block())
'''


def test_importlib_metadata_alias_needed_and_sufficient():
    without = (BLOCK_IMPORTLIB_METADATA + APPLY_ALL_BUT.format(skip='alias_importlib_metadata', path=COMPAT_PATH)
               + 'import mmaction.utils.dependency\n')
    proc = run_python(['-c', without], check=False, timeout=300)
    assert proc.returncode != 0 and 'importlib_metadata' in proc.stderr
    with_fix = (BLOCK_IMPORTLIB_METADATA + APPLY_ALL_BUT.format(skip='', path=COMPAT_PATH)
                + 'import mmaction.models\nprint("ok")\n')
    proc = run_python(['-c', with_fix], check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_multimodal_disabled_without_timm():
    pytest.importorskip('transformers')  # the upstream failure only exists beside transformers
    import importlib.util
    assert importlib.util.find_spec('timm') is None, 'timm installed: nothing to fix here'
    code = 'import mmaction.models\nprint("ok")\n'
    _check(code, 'disable_mmaction_multimodal_without_timm', True, "No module named 'timm'")
    _check(code, '', False)


def test_torch_load_runner_checkpoint(tmp_path):
    ckpt = tmp_path / 'runner_like.pth'
    make = f'''
import numpy as np, torch
from mmengine.logging import HistoryBuffer
torch.save({{'meta': {{'epoch': np.int64(3)}}, 'message_hub': {{'b': HistoryBuffer()}},
            'state_dict': {{'w': torch.ones(2)}}}}, {str(ckpt)!r})
'''
    run_python(['-c', make], timeout=300)
    load = f'''
import torch
ckpt = torch.load({str(ckpt)!r}, map_location='cpu')
assert int(ckpt['meta']['epoch']) == 3
'''
    _check(load, 'torch_load_safe_globals', True, 'weights_only')
    _check(load, '', False)
    # the allow-list is exact: weights_only stays on for everything else
    evil = tmp_path / 'evil.pth'
    make_evil = f'''
import os, torch
class Evil:
    def __reduce__(self):
        return (os.system, ('touch {str(tmp_path / "PWNED")}', ))
torch.save({{'x': Evil()}}, {str(evil)!r})
'''
    run_python(['-c', make_evil], timeout=300)
    _check(f'import torch; torch.load({str(evil)!r}, map_location="cpu")', '', True,
           'posix.system')
    assert not (tmp_path / 'PWNED').exists()


def test_numpy_nan_alias_for_ava_metrics():
    code = '''
import numpy as np
from mmaction.evaluation.functional.ava_evaluation import metrics
assert np.isnan(metrics.compute_average_precision(None, None))
'''
    _check(code, 'numpy2_removed_aliases', True, 'NAN')
    _check(code, '', False)


def test_apply_is_idempotent():
    import torch

    import vmae2_mm  # noqa: F401
    from vmae2_mm.utils.compat import apply_compat_patches
    load = torch.load
    apply_compat_patches()
    apply_compat_patches()
    assert torch.load is load

"""The AVA detector parts are checked where a detector config is built, with the real cause."""
import os
import os.path as osp
import subprocess
import sys

from mmengine.config import Config

from vmae2_mm.models.detectors import check_ava_detector_cfg

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..', '..'))
AVA_CFG = osp.join(ROOT, 'configs', 'detection', 'videomaev2',
                   'vit-tiny-p8_scratch_1xb8-8x4x1-30e_mini-ava-rgb.py')
REC_CFG = osp.join(ROOT, 'configs', 'recognition', 'videomaev2',
                   'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py')


def test_detector_configs_are_recognised_and_pass_here():
    assert check_ava_detector_cfg(Config.fromfile(AVA_CFG).model) is True
    assert check_ava_detector_cfg(Config.fromfile(REC_CFG).model) is False


def _run_without_mmcv_ops(argv):
    """tools/train.py in a fresh process where mmcv's compiled ops (``mmcv._ext``) do not
    import, as with mmcv built without them (``mmcv.ops`` then fails to import)."""
    code = ("import sys, runpy; sys.modules['mmcv._ext'] = None; "
            f"sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name='__main__')")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_detector_without_mmcv_ops_fails_at_build_with_the_cause(tmp_path):
    out = _run_without_mmcv_ops([osp.join(ROOT, 'tools', 'train.py'), AVA_CFG,
                                 '--work-dir', str(tmp_path / 'ava')])
    assert out.returncode != 0
    assert 'AVA detection needs mmcv with compiled ops' in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / 'ava').exists()  # nothing was built or written
    # the package imports without the ops (recognition / TAD do not need them), logging
    # nothing about AVA at import time
    rec = _run_without_mmcv_ops([osp.join(ROOT, 'tools', 'train.py'), '--help'])
    assert rec.returncode == 0 and 'AVA' not in rec.stderr, rec.stderr[-2000:]

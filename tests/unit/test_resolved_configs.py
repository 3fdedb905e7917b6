"""Every shipped config resolves (after all ``_base_`` inheritance) to exactly the recorded
settings: a refactor of the config tree (moving bases, inheriting recipes) cannot change what
a user trains, and an intended change of a recipe is visible as an update of
``tests/data/resolved_configs.json``.

After an intended change, refresh the record and review the diff of the changed recipes::

    python tests/unit/test_resolved_configs.py --update
"""
import glob
import hashlib
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RECORD = osp.join(ROOT, 'tests', 'data', 'resolved_configs.json')


def shipped_configs():
    return sorted(osp.relpath(c, ROOT) for c in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                                          recursive=True)
                  if osp.join('configs', '_base_') not in c)


def resolved(rel: str) -> str:
    """The config as canonical JSON (sorted keys), with the checkout's path replaced."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, rel)).to_dict()
    cfg.pop('filename', None)
    return json.dumps(cfg, sort_keys=True, default=repr).replace(ROOT, '<ROOT>')


def digest(rel: str) -> str:
    return hashlib.sha256(resolved(rel).encode()).hexdigest()


def test_resolved_configs_unchanged():
    with open(RECORD) as f:
        record = json.load(f)
    now = {rel: digest(rel) for rel in shipped_configs()}
    changed = sorted(k for k in now if k in record and record[k] != now[k])
    new = sorted(set(now) - set(record))
    gone = sorted(set(record) - set(now))
    assert not (changed or new or gone), (
        f'resolved configs differ from {osp.relpath(RECORD, ROOT)}: changed {changed}, '
        f'new {new}, removed {gone}. If intended, run '
        '`python tests/unit/test_resolved_configs.py --update` and review the recipes.')


if __name__ == '__main__':
    if sys.argv[1:] != ['--update']:
        sys.exit(__doc__)
    sys.path.insert(0, ROOT)
    import vmae2_mm  # noqa: F401
    with open(RECORD, 'w') as f:
        json.dump({rel: digest(rel) for rel in shipped_configs()}, f, indent=1, sort_keys=True)
        f.write('\n')
    print(f'wrote {RECORD}')

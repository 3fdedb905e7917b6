"""``--cfg-options`` keys checked against the config before they are merged.

Why: mmengine's ``Config.merge_from_dict`` creates any key it is given, so a typo such as
``train_dataloder.batch_size=2`` adds a new, unused top-level dict and the run goes on with the
config's batch size, silently. A top-level key is accepted only if the config has it or the
Runner reads it (its constructor arguments, plus the few keys the tools read); anything else is
an error that suggests the closest valid key. Nested keys under an existing dict may add new
options (that is how a user sets an option the base left at its default), so those are only
reported when they look like a typo of an existing sibling.
"""
import difflib
import inspect
import logging
from typing import Iterable, List

from mmengine.config import Config
from mmengine.logging import print_log

# top-level keys read by tools/train.py, tools/test.py or our Runner builder, beyond
# Runner.__init__'s arguments
EXTRA_TOP_LEVEL_KEYS = ('runner_type', 'strategy', 'load_strict', 'auto_scale_lr',
                        'custom_imports', 'default_scope', 'work_dir', 'launcher', 'compile')


def _runner_keys() -> List[str]:
    from mmengine.runner import FlexibleRunner, Runner
    keys = set(EXTRA_TOP_LEVEL_KEYS)
    for cls in (Runner, FlexibleRunner):
        keys.update(p for p in inspect.signature(cls.__init__).parameters if p != 'self')
    return sorted(keys)


def check_cfg_options(cfg: Config, options: Iterable[str], source: str = '--cfg-options'
                      ) -> None:
    """Raise ``KeyError`` for an option whose top-level key neither the config nor the Runner
    knows; warn for a new nested key that is one edit away from an existing one.

    Args:
        cfg: The loaded config (before the options are merged).
        options: The dotted keys, e.g. ``['train_dataloader.batch_size', 'model.backbone.x']``.
        source: Where the options came from, for the message.
    """
    valid = sorted(set(cfg.keys()) | set(_runner_keys()))
    for key in options:
        parts = key.split('.')
        top = parts[0]
        if top not in valid:
            close = difflib.get_close_matches(top, valid, n=1, cutoff=0.75)
            hint = f"; did you mean '{close[0]}'?" if close else ''
            raise KeyError(f"{source}: unknown config key '{top}' (in '{key}'){hint} "
                           f'The config defines: {", ".join(sorted(cfg.keys()))}.')
        node = cfg
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part.isdigit():
                break
            if part not in node:
                close = difflib.get_close_matches(part, list(node.keys()), n=1, cutoff=0.85)
                if close and depth > 0:
                    where = '.'.join(parts[:depth])
                    print_log(f"{source}: '{key}' adds the new key '{part}' under '{where}', "
                              f"which has '{close[0]}'; check the spelling",
                              logger='current', level=logging.WARNING)
                break
            node = node[part]

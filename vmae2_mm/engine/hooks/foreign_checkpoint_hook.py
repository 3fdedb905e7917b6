"""Runner hook: ``load_from`` accepts official, HF and mmaction2 VideoMAE checkpoint files.

mmengine calls ``before_run`` before it loads ``load_from``, so installing the state-dict
pre-hook of :func:`vmae2_mm.checkpoint.foreign.install_foreign_checkpoint_hook` there
makes a released fine-tuned checkpoint (``model``-nested ``blocks.*`` + ``head.*``, HF,
mmaction2) load with its classifier, e.g. ``load_from='vit_b_k710_dl_from_giant.pth'`` into a
K400 recognizer (head rows selected by ``label_map``, ``'k710to400'`` chosen automatically for
710 -> 400 classes).

Loading is strict by default (``load_from``, ``--resume``, ``tools/test.py CONFIG CKPT``): a
checkpoint of another arch, with missing blocks, another shape or another head size fails when
mmengine loads it, before any data is read, with the keys, expected vs found shapes and the
likely cause. Partial loading only on request: ``load_strict=False`` in the config (what
``--partial-load`` of ``tools/train.py`` / ``tools/test.py`` sets) or ``strict=False`` here.
"""
from typing import Optional, Sequence, Union

from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from vmae2_mm.checkpoint.foreign import install_foreign_checkpoint_hook


@HOOKS.register_module()
class ForeignCheckpointHook(Hook):
    """Install the foreign-layout checkpoint conversion on the runner's recognizer.

    Args:
        label_map (str | Sequence[int], optional): Head rows to keep from the checkpoint's
            classifier (short name such as ``'k710to400'``, JSON path or index list). None: no
            map when the sizes agree, the K710 map for 710 -> 400/600/700 classes.
        strict (bool, optional): Fail on any missing / unexpected / mis-shaped key. None (the
            default): the config's ``load_strict`` (True when absent).
    """

    priority = 'VERY_HIGH'

    def __init__(self, label_map: Optional[Union[str, Sequence[int]]] = None,
                 strict: Optional[bool] = None) -> None:
        if strict is not None and not isinstance(strict, bool):
            raise TypeError(f'ForeignCheckpointHook.strict must be True, False or None, got '
                            f'{strict!r}')
        self.strict = strict
        if label_map is not None and not isinstance(label_map, (str, list, tuple)):
            raise TypeError(f'ForeignCheckpointHook.label_map must be a name, a path or a list '
                            f'of ints, got {type(label_map).__name__}')
        self.label_map = label_map

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        strict = self.strict
        if strict is None:
            strict = (getattr(runner, 'cfg', None) or {}).get('load_strict', True)
            if not isinstance(strict, bool):
                raise TypeError(f'load_strict must be True or False, got {strict!r}')
        source = getattr(runner, '_load_from', None) or 'checkpoint (resume)'
        install_foreign_checkpoint_hook(model, self.label_map, runner.logger, strict=strict,
                                        source=str(source))

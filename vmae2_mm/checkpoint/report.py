"""One report of what a state dict does not match in a model, used by every loader.

:func:`compare` lists missing, unexpected and mis-shaped keys *before* anything is copied;
:func:`enforce` raises :class:`CheckpointMismatchError` (strict, the default everywhere a
checkpoint is meant to be the model: ``load_from``, ``--resume``, ``tools/test.py``) or logs a
summary (partial loading, asked for explicitly). The message names each key with the expected
(model) and found (checkpoint) shapes and the likely cause (another ViT width or depth, a
classifier of another size, a checkpoint without head).
"""
import logging
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from torch import Tensor

#: ViT widths of the VideoMAE V2 archs (``resolve_arch``), for the likely-cause message.
WIDTH_NAMES = {384: 'ViT-S', 768: 'ViT-B', 1024: 'ViT-L', 1280: 'ViT-H', 1408: 'ViT-g'}
_BLOCK = re.compile(r'(?:^|\.)blocks\.(\d+)\.')
#: Shown per list before "... and N more".
MAX_LISTED = 12


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model (strict loading)."""


@dataclass
class LoadReport:
    """Differences between a checkpoint state dict and a model's.

    Attributes:
        missing (list[str]): Model keys the checkpoint lacks.
        unexpected (list[str]): Checkpoint keys the model does not have.
        mismatched (list[tuple]): ``(key, model_shape, checkpoint_shape)``.
        loaded (int): Keys present in both with equal shapes.
    """
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    loaded: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def causes(self) -> List[str]:
        """Likely reasons, from the shapes and key names."""
        out = []
        widths = set()
        for k, exp, got in self.mismatched:
            if k.endswith(('norm1.weight', 'patch_embed.proj.bias', 'fc_norm.weight')) and \
                    len(exp) == 1 and len(got) == 1:
                widths.add((got[0], exp[0]))
        for got, exp in sorted(widths):
            out.append(f'checkpoint is {WIDTH_NAMES.get(got, "a ViT")} ({got} wide), config is '
                       f'{WIDTH_NAMES.get(exp, "a ViT")} ({exp})')
        head = [(exp, got) for k, exp, got in self.mismatched
                if k.endswith('fc_cls.weight') and len(exp) == 2 and len(got) == 2
                and exp[1] == got[1]]
        for exp, got in head:
            out.append(f'the checkpoint classifier has {got[0]} classes, the model {exp[0]}: '
                       'set the head size or a label_map (e.g. k710to400)')
        miss_blocks = {int(m.group(1)) for k in self.missing for m in [_BLOCK.search(k)] if m}
        extra_blocks = {int(m.group(1)) for k in self.unexpected
                        for m in [_BLOCK.search(k)] if m}
        if miss_blocks:
            out.append(f'the checkpoint lacks blocks {_ranges(miss_blocks)}: it is shallower than '
                       'the config (another arch, or a truncated/edited file)')
        if extra_blocks:
            out.append(f'the checkpoint has blocks {_ranges(extra_blocks)} the config does not: '
                       'it is deeper than the config (another arch)')
        if self.missing and all('fc_cls' in k for k in self.missing):
            out.append('the checkpoint has no classifier (converted with --no-head, or a '
                       'backbone/pre-training file): pass --partial-load to train a new head')
        return out

    def summary(self, source: str = 'checkpoint') -> str:
        """Multi-line description: each list, shapes, likely causes."""
        lines = [f'{source}: {self.loaded} tensors match; {len(self.missing)} missing, '
                 f'{len(self.unexpected)} unexpected, {len(self.mismatched)} with another shape']
        if self.mismatched:
            lines.append('  shape (expected by the model vs found in the checkpoint):')
            lines += [f'    {k}: expected {tuple(e)}, found {tuple(g)}'
                      for k, e, g in self.mismatched[:MAX_LISTED]]
            lines += _more(self.mismatched)
        if self.missing:
            lines.append('  missing in the checkpoint: ' + _listing(self.missing))
        if self.unexpected:
            lines.append('  not in the model: ' + _listing(self.unexpected))
        causes = self.causes()
        if causes:
            lines.append('  likely cause: ' + '; '.join(causes))
        return '\n'.join(lines)


def _listing(keys: List[str]) -> str:
    more = len(keys) - MAX_LISTED
    return ', '.join(keys[:MAX_LISTED]) + (f' ... and {more} more' if more > 0 else '')


def _more(items: list) -> List[str]:
    more = len(items) - MAX_LISTED
    return [f'    ... and {more} more'] if more > 0 else []


def _ranges(idx: Iterable[int]) -> str:
    idx = sorted(idx)
    return f'{idx[0]}..{idx[-1]}' if len(idx) > 1 else str(idx[0])


def compare(state_dict: Dict[str, Tensor], own: Dict[str, Tensor],
            resizable: Iterable[str] = (), ignore: Tuple[str, ...] = ()) -> LoadReport:
    """Compare a checkpoint state dict with a model's ``state_dict()`` without loading.

    Args:
        state_dict (dict): Checkpoint tensors (keys already in the model's naming).
        own (dict): The model's state dict.
        resizable (Iterable[str]): Checkpoint keys the model accepts though they are not in
            ``own`` (a learnable position table the backbone resizes on load); only their last
            dimension (width) is checked, against ``own`` when present there.
        ignore (tuple[str]): Key prefixes left out of both sides (e.g. ``data_preprocessor``).
    """
    resizable = set(resizable)
    rep = LoadReport()
    for k, v in state_dict.items():
        if k.startswith(ignore) or not isinstance(v, Tensor):
            continue
        if k in own:
            if tuple(own[k].shape) != tuple(v.shape) and k not in resizable:
                rep.mismatched.append((k, tuple(own[k].shape), tuple(v.shape)))
            else:
                rep.loaded += 1
        elif k not in resizable:
            rep.unexpected.append(k)
        else:
            rep.loaded += 1
    rep.missing = [k for k in own if k not in state_dict and not k.startswith(ignore)]
    return rep


def enforce(report: LoadReport, strict: bool = True, source: str = 'checkpoint',
            logger: Optional[logging.Logger] = None) -> LoadReport:
    """Raise on any difference when ``strict``; otherwise log the summary (warning level).

    Raises:
        CheckpointMismatchError: ``strict`` and the report is not clean. The message ends with
            how to load partially on purpose.
    """
    logger = logger or logging.getLogger(__name__)
    if report.ok:
        logger.info(f'{source}: all {report.loaded} tensors match the model')
        return report
    text = report.summary(source)
    if strict:
        raise CheckpointMismatchError(
            text + '\n  (strict loading; to load the matching tensors only, pass --partial-load '
            'to tools/train.py / tools/test.py or set load_strict=False in the config)')
    logger.warning('partial load (requested): ' + text)
    return report


__all__ = ['CheckpointMismatchError', 'LoadReport', 'compare', 'enforce', 'WIDTH_NAMES']

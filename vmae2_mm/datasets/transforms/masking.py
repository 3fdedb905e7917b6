"""Token masks for VideoMAE (V2) pre-training, sampled in the data pipeline.

Masks are flat bool arrays over the token grid ``(T', H', W')`` in the backbone's time-major
raster order (index ``t*H'*W' + h*W' + w``):

* ``enc_hidden`` [N]: True = hidden from the encoder (the encoder sees the False tokens);
* ``dec_kept`` [N]: True = reconstructed by the decoder.

The pretrainer reads both from the data sample (``PackActionInputs(algorithm_keys=('enc_hidden',
'dec_kept'))``); without ``dec_kept`` it reconstructs exactly ``enc_hidden`` (VideoMAE v1).

Randomness comes from numpy's global RNG (seeded per worker by mmengine) unless ``seed`` is
given, which gives each transform instance its own reproducible stream (for tests and analysis;
with several dataloader workers every worker would then repeat the same stream).

Behaviour follows OpenGVLab/VideoMAEv2 ``dataset/masking_generator.py`` (facts, see
``videomaev2.md`` section 4): tube masking tiles one random per-slice pattern of
``int(ratio*H'*W')`` masked tokens over every slice; running-cell masking drops a 2x2 cell queue
rotated once per temporal slice in raster order, so only four decoder masks exist.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

MASK_TARGETS = ('encoder', 'decoder')
RUNNING_CELL_RATIOS = (0., 0.25, 0.5, 0.75)


def _check_grid(grid: Sequence[int], owner: str) -> Tuple[int, int, int]:
    if (not isinstance(grid, (tuple, list)) or len(grid) != 3
            or not all(isinstance(g, (int, np.integer)) and g > 0 for g in grid)):
        raise ValueError(f"{owner}: 'grid' must be three positive ints (T', H', W') of the token "
                         f'grid, e.g. (8, 14, 14) for 16x224x224 at patch 16; got {grid!r}')
    return tuple(int(g) for g in grid)


def _check_ratio(ratio: float, owner: str, low_open: bool = True) -> float:
    if not isinstance(ratio, (int, float)) or not (0 < ratio < 1 if low_open else 0 <= ratio < 1):
        interval = '(0, 1)' if low_open else '[0, 1)'
        raise ValueError(f"{owner}: 'ratio' must be a float in {interval}, got {ratio!r}")
    return float(ratio)


def _check_target(target: str, owner: str) -> str:
    if target not in MASK_TARGETS:
        raise ValueError(f"{owner}: 'target' must be one of {MASK_TARGETS}, got {target!r}")
    return target


class _MaskingBase(BaseTransform):
    """Shared RNG handling and result writing for the masking transforms."""

    def __init__(self, grid: Sequence[int], seed: Optional[int] = None) -> None:
        self.grid = _check_grid(grid, type(self).__name__)
        self.num_tokens = int(np.prod(self.grid))
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def _permutation(self, n: int) -> np.ndarray:
        if self._rng is not None:
            return self._rng.permutation(n)
        return np.random.permutation(n)

    def _randint(self, high: int) -> int:
        if self._rng is not None:
            return int(self._rng.integers(high))
        return int(np.random.randint(high))

    @staticmethod
    def _write(results: Dict, target: str, dropped: np.ndarray) -> Dict:
        """Store a mask of tokens *dropped* for ``target`` under the documented key."""
        if target == 'encoder':
            results['enc_hidden'] = dropped
        else:
            results['dec_kept'] = ~dropped
        return results

    def __repr__(self) -> str:
        fields = ', '.join(f'{k}={v!r}' for k, v in self._repr_fields().items())
        return f'{type(self).__name__}({fields})'

    def _repr_fields(self) -> dict:
        return dict(grid=self.grid, seed=self.seed)


@TRANSFORMS.register_module()
class TubeMasking(_MaskingBase):
    """Encoder tube masking: one random spatial mask repeated in every temporal slice.

    ``int(ratio * H' * W')`` tokens are hidden per slice, so at ratio 0.9 and 8x14x14 the encoder
    sees 20 tokens per slice, 160 in total (208 for ViT-g's 8x16x16).

    Args:
        ratio (float): Fraction hidden per slice, in (0, 1). Defaults to 0.9.
        grid (tuple[int]): Token grid (T', H', W').
        seed (int, optional): Private RNG seed; None uses numpy's global RNG.

    Added keys: ``enc_hidden`` (ndarray): [N] bool, True = hidden from the encoder.
    """

    def __init__(self, grid: Sequence[int], ratio: float = 0.9,
                 seed: Optional[int] = None) -> None:
        super().__init__(grid, seed)
        self.ratio = _check_ratio(ratio, 'TubeMasking')
        t, h, w = self.grid
        self.num_hidden_per_slice = int(self.ratio * h * w)
        if self.num_hidden_per_slice >= h * w or self.num_hidden_per_slice == 0:
            raise ValueError(f'TubeMasking: ratio={ratio} hides {self.num_hidden_per_slice} of '
                             f'{h * w} tokens per slice; at least one token must be hidden and '
                             'one visible')

    def transform(self, results: Dict) -> Dict:
        t, h, w = self.grid
        per_slice = np.zeros(h * w, dtype=bool)
        per_slice[self._permutation(h * w)[:self.num_hidden_per_slice]] = True
        return self._write(results, 'encoder', np.tile(per_slice, t))

    def _repr_fields(self) -> dict:
        return dict(grid=self.grid, ratio=self.ratio, seed=self.seed)


def running_cell_patterns(grid: Sequence[int], ratio: float) -> np.ndarray:
    """The four running-cell decoder *drop* masks (True = not reconstructed).

    A 2x2 cell queue ``[1]*m + [0]*(4-m)`` with ``m = int(4*ratio)`` is laid over each 2x2 unit in
    raster order ((0,0), (0,1), (1,0), (1,1)); for start pointer ``p`` the queue is rotated to
    ``p + t + 1`` before slice ``t`` (advanced once before the first slice, as official). At ratio
    0.5, p=0 the unit cycles main diagonal, bottom row, anti-diagonal, top row dropped.

    Args:
        grid (tuple[int]): (T', H', W') with H' and W' even.
        ratio (float): One of 0.25, 0.5, 0.75.

    Returns:
        ndarray: [4, N] bool, one row per start pointer.
    """
    t, h, w = grid
    m = int(4 * ratio)
    queue = np.array([1] * m + [0] * (4 - m), dtype=bool)
    patterns = np.empty((4, t, h, w), dtype=bool)
    for p in range(4):
        for s in range(t):
            ptr = p + s + 1
            unit = queue[(np.arange(4) + ptr) % 4].reshape(2, 2)
            patterns[p, s] = np.tile(unit, (h // 2, w // 2))
    return patterns.reshape(4, -1)


@TRANSFORMS.register_module()
class RunningCellMasking(_MaskingBase):
    """Decoder running-cell masking (VideoMAE V2 dual masking).

    Picks one of the four published patterns (:func:`running_cell_patterns`) uniformly; at ratio
    0.5 the decoder reconstructs half of the tokens, each spatial position in exactly 4 of 8
    slices. ``ratio=0`` switches decoder masking off: ``dec_kept`` becomes a copy of
    ``enc_hidden`` (reconstruct exactly the encoder-hidden tokens, VideoMAE v1), so this
    transform must then come after the encoder masking.

    Args:
        grid (tuple[int]): Token grid (T', H', W'); H' and W' must be even.
        ratio (float): Fraction of tokens dropped from the decoder, one of 0, 0.25, 0.5, 0.75.
            Defaults to 0.5.
        seed (int, optional): Private RNG seed; None uses numpy's global RNG.

    Added keys: ``dec_kept`` (ndarray): [N] bool, True = reconstructed by the decoder.
    """

    def __init__(self, grid: Sequence[int], ratio: float = 0.5,
                 seed: Optional[int] = None) -> None:
        super().__init__(grid, seed)
        if ratio not in RUNNING_CELL_RATIOS:
            raise ValueError(f"RunningCellMasking: 'ratio' must be one of {RUNNING_CELL_RATIOS} "
                             f'(0 = no decoder masking), got {ratio!r}')
        self.ratio = float(ratio)
        _, h, w = self.grid
        if h % 2 or w % 2:
            raise ValueError(f"RunningCellMasking: the 2x2 running cell needs an even spatial "
                             f"grid, got grid={self.grid} (H'={h}, W'={w})")
        self.patterns = running_cell_patterns(self.grid, self.ratio) if self.ratio else None

    def transform(self, results: Dict) -> Dict:
        if self.patterns is None:
            if 'enc_hidden' not in results:
                raise KeyError('RunningCellMasking(ratio=0) copies the encoder mask, so it must '
                               "come after TubeMasking (no 'enc_hidden' in the results)")
            results['dec_kept'] = np.array(results['enc_hidden'], dtype=bool, copy=True)
            return results
        return self._write(results, 'decoder', self.patterns[self._randint(4)].copy())

    def _repr_fields(self) -> dict:
        return dict(grid=self.grid, ratio=self.ratio, seed=self.seed)


@TRANSFORMS.register_module()
class RandomMasking(_MaskingBase):
    """Random token masking over the whole grid (ablation, paper Table 1).

    Drops exactly ``int(ratio * N)`` tokens, chosen uniformly, for the encoder (``enc_hidden``)
    or the decoder (``dec_kept`` = not dropped).

    Args:
        grid (tuple[int]): Token grid (T', H', W').
        ratio (float): Fraction dropped, in (0, 1).
        target (str): ``'encoder'`` or ``'decoder'``. Defaults to ``'encoder'``.
        seed (int, optional): Private RNG seed; None uses numpy's global RNG.
    """

    def __init__(self, grid: Sequence[int], ratio: float, target: str = 'encoder',
                 seed: Optional[int] = None) -> None:
        super().__init__(grid, seed)
        self.ratio = _check_ratio(ratio, 'RandomMasking')
        self.target = _check_target(target, 'RandomMasking')
        self.num_dropped = int(self.ratio * self.num_tokens)
        if not 0 < self.num_dropped < self.num_tokens:
            raise ValueError(f'RandomMasking: ratio={ratio} drops {self.num_dropped} of '
                             f'{self.num_tokens} tokens; must drop at least one and keep one')

    def transform(self, results: Dict) -> Dict:
        dropped = np.zeros(self.num_tokens, dtype=bool)
        dropped[self._permutation(self.num_tokens)[:self.num_dropped]] = True
        return self._write(results, self.target, dropped)

    def _repr_fields(self) -> dict:
        return dict(grid=self.grid, ratio=self.ratio, target=self.target, seed=self.seed)


@TRANSFORMS.register_module()
class FrameMasking(_MaskingBase):
    """Drop whole temporal slices (ablation, paper Table 1 "frame" decoder masking).

    ``int(ratio * T')`` slices, chosen uniformly, are dropped entirely for the encoder or the
    decoder.

    Args:
        grid (tuple[int]): Token grid (T', H', W'); needs T' >= 2.
        ratio (float): Fraction of slices dropped, in (0, 1).
        target (str): ``'encoder'`` or ``'decoder'``. Defaults to ``'decoder'``.
        seed (int, optional): Private RNG seed; None uses numpy's global RNG.
    """

    def __init__(self, grid: Sequence[int], ratio: float = 0.5, target: str = 'decoder',
                 seed: Optional[int] = None) -> None:
        super().__init__(grid, seed)
        self.ratio = _check_ratio(ratio, 'FrameMasking')
        self.target = _check_target(target, 'FrameMasking')
        t = self.grid[0]
        self.num_dropped = int(self.ratio * t)
        if not 0 < self.num_dropped < t:
            raise ValueError(f"FrameMasking: ratio={ratio} drops {self.num_dropped} of T'={t} "
                             'slices; must drop at least one slice and keep one')

    def transform(self, results: Dict) -> Dict:
        t, h, w = self.grid
        dropped = np.zeros((t, h * w), dtype=bool)
        dropped[self._permutation(t)[:self.num_dropped]] = True
        return self._write(results, self.target, dropped.reshape(-1))

    def _repr_fields(self) -> dict:
        return dict(grid=self.grid, ratio=self.ratio, target=self.target, seed=self.seed)


__all__ = ['TubeMasking', 'RunningCellMasking', 'RandomMasking', 'FrameMasking',
           'running_cell_patterns']

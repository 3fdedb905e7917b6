"""Video-consistent RandAugment (``rand-m7-n4-mstd0.5-inc1``) on uint8 RGB frames.

mmaction2 offers RandAugment only through ``PytorchVideoWrapper`` (pytorchvideo) or
``TorchVisionWrapper``; neither imports on this stack (pytorchvideo breaks on torchvision
>= 0.17 and the PyPI torchvision wheel does not load beside CPU torch), so this is a small
PIL/numpy implementation of the semantics VideoMAE V2 fine-tuning uses (timm's
``rand_augment_transform`` applied clip-wise by the official ``dataset/rand_augment.py``).
"""
import re
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform
from PIL import Image, ImageEnhance, ImageOps

#: The ``inc1`` op set (magnitudes increase the distortion for every op).
INCREASING_OPS = (
    'AutoContrast', 'Equalize', 'Invert', 'Rotate', 'PosterizeIncreasing',
    'SolarizeIncreasing', 'SolarizeAdd', 'ColorIncreasing', 'ContrastIncreasing',
    'BrightnessIncreasing', 'SharpnessIncreasing', 'ShearX', 'ShearY', 'TranslateXRel',
    'TranslateYRel')
#: The original (``inc0``) op set.
DEFAULT_OPS = (
    'AutoContrast', 'Equalize', 'Invert', 'Rotate', 'Posterize', 'Solarize', 'SolarizeAdd',
    'Color', 'Contrast', 'Brightness', 'Sharpness', 'ShearX', 'ShearY', 'TranslateXRel',
    'TranslateYRel')
_INTERP = {'bilinear': Image.BILINEAR, 'bicubic': Image.BICUBIC, 'nearest': Image.NEAREST}


def _signed(v: float, rng: np.random.RandomState) -> float:
    """Negate with probability 0.5 (timm ``_randomly_negate``)."""
    return -v if rng.random_sample() > 0.5 else v


def op_argument(name: str, level: float, rng: np.random.RandomState,
                translate_pct: float = 0.45) -> Tuple:
    """Arguments of op ``name`` at magnitude ``level`` (0..10), timm's level-to-arg rules.

    Rotate: +-30 deg x level/10; Shear: +-0.3; TranslateRel: +-``translate_pct`` of the side;
    enhance ops: ``1 +- 0.9 x level/10`` (increasing) or ``0.1 + 1.8 x level/10``; Posterize
    bits ``4 - int(4 x level/10)`` (increasing) or ``int(4 x level/10)``; Solarize threshold
    ``256 - int(256 x level/10)`` (increasing) or ``int(256 x level/10)``; SolarizeAdd adds
    ``int(110 x level/10)`` below 128.
    """
    f = level / 10.
    if name in ('AutoContrast', 'Equalize', 'Invert'):
        return ()
    if name == 'Rotate':
        return (_signed(f * 30., rng), )
    if name in ('ShearX', 'ShearY'):
        return (_signed(f * 0.3, rng), )
    if name in ('TranslateXRel', 'TranslateYRel'):
        return (_signed(f * translate_pct, rng), )
    if name.endswith('Increasing') and name.startswith(('Color', 'Contrast', 'Brightness',
                                                        'Sharpness')):
        return (1. + _signed(f * .9, rng), )
    if name in ('Color', 'Contrast', 'Brightness', 'Sharpness'):
        return (f * 1.8 + .1, )
    if name == 'PosterizeIncreasing':
        return (4 - int(f * 4), )
    if name == 'Posterize':
        return (int(f * 4), )
    if name == 'SolarizeIncreasing':
        return (256 - int(f * 256), )
    if name == 'Solarize':
        return (int(f * 256), )
    if name == 'SolarizeAdd':
        return (int(f * 110), )
    raise KeyError(f'unknown RandAugment op {name!r}')


def apply_op(img: Image.Image, name: str, args: Tuple, fill: Tuple[int, int, int],
             resample: int) -> Image.Image:
    """Apply op ``name`` with fixed ``args`` to one PIL RGB frame."""
    if name == 'AutoContrast':
        return ImageOps.autocontrast(img)
    if name == 'Equalize':
        return ImageOps.equalize(img)
    if name == 'Invert':
        return ImageOps.invert(img)
    if name == 'Rotate':
        return img.rotate(args[0], resample=resample, fillcolor=fill)
    w, h = img.size
    affine = {
        'ShearX': lambda v: (1, v, 0, 0, 1, 0),
        'ShearY': lambda v: (1, 0, 0, v, 1, 0),
        'TranslateXRel': lambda v: (1, 0, v * w, 0, 1, 0),
        'TranslateYRel': lambda v: (1, 0, 0, 0, 1, v * h),
    }
    if name in affine:
        return img.transform(img.size, Image.AFFINE, affine[name](args[0]), resample=resample,
                             fillcolor=fill)
    if name.startswith('Posterize'):
        return img if args[0] >= 8 else ImageOps.posterize(img, max(args[0], 0))
    if name.startswith('Solarize') and name != 'SolarizeAdd':
        return ImageOps.solarize(img, args[0])
    if name == 'SolarizeAdd':
        lut = [min(255, i + args[0]) if i < 128 else i for i in range(256)]
        return img.point(lut * len(img.getbands()))
    enhancers: Dict[str, Callable] = dict(Color=ImageEnhance.Color,
                                          Contrast=ImageEnhance.Contrast,
                                          Brightness=ImageEnhance.Brightness,
                                          Sharpness=ImageEnhance.Sharpness)
    base = name[:-len('Increasing')] if name.endswith('Increasing') else name
    if base in enhancers:
        return enhancers[base](img).enhance(args[0])
    raise KeyError(f'unknown RandAugment op {name!r}')


def parse_rand_augment(config_str: str) -> dict:
    """Parse a timm-style ``rand-m7-n4-mstd0.5-inc1`` string into constructor arguments."""
    parts = config_str.split('-')
    if parts[0] != 'rand':
        raise ValueError(f"RandAugment config must start with 'rand', got {config_str!r}")
    out = {}
    for part in parts[1:]:
        m = re.fullmatch(r'(mstd|mmax|inc|m|n|p)([\d.]+|inf)', part)
        if m is None:
            raise ValueError(f'RandAugment config {config_str!r}: cannot parse {part!r} '
                             '(expected m<int>, n<int>, mstd<float>, mmax<float>, inc<0|1>, '
                             'p<float>)')
        key, val = m.groups()
        if key == 'm':
            out['magnitude'] = float(val)
        elif key == 'n':
            out['num_layers'] = int(val)
        elif key == 'mstd':
            out['magnitude_std'] = float(val)
        elif key == 'mmax':
            out['magnitude_max'] = float(val)
        elif key == 'inc':
            out['increasing'] = bool(int(val))
        else:
            out['prob'] = float(val)
    return out


@TRANSFORMS.register_module()
class VideoRandAugment(BaseTransform):
    """RandAugment with one draw per clip: the same ops, magnitudes and signs on every frame.

    For each clip: ``num_layers`` ops are drawn uniformly with replacement; each is applied with
    probability ``prob`` at magnitude ``N(magnitude, magnitude_std)`` clipped to
    ``[0, magnitude_max]``. Defaults reproduce VideoMAE V2 fine-tuning
    (``rand-m7-n4-mstd0.5-inc1``, bicubic, fill = ImageNet mean in 0-255). Randomness comes from
    numpy's global generator, which mmengine seeds per worker.

    Required keys: ``imgs`` (list of [H, W, 3] uint8 RGB). Modified keys: ``imgs``.

    Args:
        magnitude (float): Mean magnitude m (0..10). Defaults to 7.
        num_layers (int): Ops per clip n. Defaults to 4.
        magnitude_std (float): Std of the magnitude noise; ``inf`` draws uniformly from
            [0, m]. Defaults to 0.5.
        magnitude_max (float): Upper clip of the magnitude. Defaults to 10.
        increasing (bool): Use the ``inc1`` op set. Defaults to True.
        prob (float): Probability of applying each drawn op. Defaults to 0.5.
        translate_pct (float): Max translation as a fraction of the side. Defaults to 0.45.
        fill (Sequence[int]): RGB fill of pixels moved in by geometric ops. Defaults to
            (124, 116, 104).
        interpolation (str): ``'bicubic' | 'bilinear' | 'nearest'``. Defaults to 'bicubic'.
        config_str (str, optional): timm-style string (``'rand-m7-n4-mstd0.5-inc1'``); its
            fields override the arguments above.
    """

    def __init__(self,
                 magnitude: float = 7.,
                 num_layers: int = 4,
                 magnitude_std: float = 0.5,
                 magnitude_max: float = 10.,
                 increasing: bool = True,
                 prob: float = 0.5,
                 translate_pct: float = 0.45,
                 fill: Sequence[int] = (124, 116, 104),
                 interpolation: str = 'bicubic',
                 config_str: str = None) -> None:
        cfg = dict(magnitude=magnitude, num_layers=num_layers, magnitude_std=magnitude_std,
                   magnitude_max=magnitude_max, increasing=increasing, prob=prob)
        if config_str is not None:
            cfg.update(parse_rand_augment(config_str))
        errors = []
        if not 0 <= cfg['magnitude'] <= cfg['magnitude_max']:
            errors.append(f"magnitude={cfg['magnitude']} must be in [0, magnitude_max="
                          f"{cfg['magnitude_max']}]")
        if not isinstance(cfg['num_layers'], int) or cfg['num_layers'] < 0:
            errors.append(f"num_layers={cfg['num_layers']!r} must be an int >= 0")
        if cfg['magnitude_std'] < 0:
            errors.append(f"magnitude_std={cfg['magnitude_std']} must be >= 0")
        if not 0 <= cfg['prob'] <= 1:
            errors.append(f"prob={cfg['prob']} must be in [0, 1]")
        if interpolation not in _INTERP:
            errors.append(f'interpolation must be one of {sorted(_INTERP)}, got '
                          f'{interpolation!r}')
        if len(tuple(fill)) != 3:
            errors.append(f'fill must have 3 values (RGB), got {fill!r}')
        if errors:
            raise ValueError('VideoRandAugment: ' + '; '.join(errors))
        self.magnitude = float(cfg['magnitude'])
        self.num_layers = cfg['num_layers']
        self.magnitude_std = float(cfg['magnitude_std'])
        self.magnitude_max = float(cfg['magnitude_max'])
        self.ops = INCREASING_OPS if cfg['increasing'] else DEFAULT_OPS
        self.prob = float(cfg['prob'])
        self.translate_pct = translate_pct
        self.fill = tuple(int(v) for v in fill)
        self.interpolation = interpolation

    def _draw_magnitude(self, rng: np.random.RandomState) -> float:
        m = self.magnitude
        if self.magnitude_std == float('inf'):
            m = rng.uniform(0, m)
        elif self.magnitude_std > 0:
            m = rng.normal(m, self.magnitude_std)
        return float(min(max(m, 0.), self.magnitude_max))

    def sample_ops(self, rng: np.random.RandomState = np.random) -> List[Tuple[str, Tuple]]:
        """Draw the clip's op list: ``[(name, args), ...]`` of the ops that fire."""
        names = rng.choice(self.ops, self.num_layers, replace=True) if self.num_layers else []
        chosen = []
        for name in names:
            if self.prob < 1. and rng.random_sample() > self.prob:
                continue
            chosen.append((str(name), op_argument(str(name), self._draw_magnitude(rng), rng,
                                                  self.translate_pct)))
        return chosen

    def transform(self, results: dict) -> dict:
        """Apply one op draw to every frame of ``results['imgs']``."""
        imgs = results['imgs']
        ops = self.sample_ops()
        if not ops:
            return results
        resample = _INTERP[self.interpolation]
        out = []
        for frame in imgs:
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError('VideoRandAugment needs [H, W, 3] uint8 RGB frames, got '
                                 f'{frame.dtype} {frame.shape}')
            img = Image.fromarray(frame)
            for name, args in ops:
                img = apply_op(img, name, args, self.fill, resample)
            out.append(np.asarray(img))
        results['imgs'] = out
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(magnitude={self.magnitude}, '
                f'num_layers={self.num_layers}, magnitude_std={self.magnitude_std}, '
                f'prob={self.prob}, ops={len(self.ops)})')


__all__ = ['VideoRandAugment', 'parse_rand_augment', 'op_argument', 'apply_op',
           'INCREASING_OPS', 'DEFAULT_OPS']

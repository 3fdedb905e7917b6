"""What the dual-mask pretrainer sees and reconstructs, for one clip of a video.

``init_pretrainer(config, checkpoint)`` builds a ``VideoMAEv2Pretrainer`` (official, HF or
vmae2_mm pre-training checkpoints, loaded strictly); ``reconstruct_clip(model, cfg, video)``
decodes one clip the way the config samples it (``clip_len`` frames every ``frame_interval``,
short side resized and centre-cropped to the encoder's ``img_size``), draws the config's
encoder tube mask and decoder running-cell mask, runs the pretrainer and un-normalises its
predictions per cube with that cube's own pixel mean/std — the inverse of the per-cube target
normalisation the loss uses — so predictions can be looked at as pixels. ``render_grid`` makes
the PNG grid: input / encoder-visible cubes / decoder targets / reconstruction, one column per
tubelet (its first frame).

mmaction2 has no pretraining visualiser; official VideoMAE V2 has a single-video script in a
different layout, so this is our own, on our pretrainer's ``predict``.
"""
from typing import Optional, Sequence

import numpy as np
import torch

GREY = 128  # uint8 value of cubes that are not shown in a row


def init_pretrainer(config, checkpoint: Optional[str] = None, device: str = 'cpu'):
    """Build ``cfg.model`` (a ``VideoMAEv2Pretrainer``) and load ``checkpoint`` strictly.

    Returns:
        tuple: ``(model in eval mode on device, Config)``.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import vmae2_mm  # noqa: F401  (registration)
    from mmaction.registry import MODELS
    from vmae2_mm.checkpoint.pretrain import load_pretrain_checkpoint
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = MODELS.build(cfg.model)
    if type(model).__name__ != 'VideoMAEv2Pretrainer':
        raise TypeError(f'{getattr(cfg, "filename", "config")}: model is '
                        f'{type(model).__name__}, reconstruction needs a VideoMAEv2Pretrainer '
                        '(a configs/pretrain config)')
    if checkpoint:
        load_pretrain_checkpoint(model, checkpoint, strict=True)
    else:
        model.init_weights()
    return model.to(device).eval(), cfg


def _mask_transforms(cfg, seed: int):
    """The config's TubeMasking / RunningCellMasking transforms (seeded), in pipeline order."""
    from mmaction.registry import TRANSFORMS
    pipeline = cfg.train_dataloader.dataset.get('pipeline', [])
    masks = [dict(t) for t in pipeline if t['type'] in ('TubeMasking', 'RunningCellMasking',
                                                         'RandomMasking', 'FrameMasking')]
    if not any(t['type'] != 'RunningCellMasking' for t in masks):
        raise ValueError('the config\'s train pipeline has no encoder mask (TubeMasking, '
                         'RandomMasking or FrameMasking)')
    out = []
    for t in masks:
        if t['type'] == 'TubeMasking' or t['type'] == 'RandomMasking':
            t.setdefault('seed', seed)
        out.append(TRANSFORMS.build(t))
    return out


def read_clip(video: str, clip_len: int, frame_interval: int, size: int,
              start_sec: float = 0.0) -> np.ndarray:
    """``clip_len`` RGB frames every ``frame_interval`` from ``start_sec``, short side resized
    to ``size`` and centre-cropped: uint8 [T, size, size, 3]."""
    import cv2
    import decord
    try:
        vr = decord.VideoReader(video, num_threads=1)
    except Exception as e:  # decord raises its own DECORDError without the path
        raise ValueError(f'{video}: cannot open the video ({e})') from None
    fps = float(vr.get_avg_fps()) or 30.0
    first = int(round(start_sec * fps))
    need = (clip_len - 1) * frame_interval + 1
    if len(vr) < need:
        raise ValueError(f'{video}: {len(vr)} frames, one clip needs {need} '
                         f'({clip_len} x interval {frame_interval})')
    first = min(max(first, 0), len(vr) - need)
    idx = list(range(first, first + need, frame_interval))
    frames = vr.get_batch(idx).asnumpy()
    out = []
    for f in frames:
        h, w = f.shape[:2]
        s = size / min(h, w)
        f = cv2.resize(f, (max(size, round(w * s)), max(size, round(h * s))),
                       interpolation=cv2.INTER_LINEAR)
        y, x = (f.shape[0] - size) // 2, (f.shape[1] - size) // 2
        out.append(f[y:y + size, x:x + size])
    return np.stack(out)


def unnormalize_cubes(pred: torch.Tensor, cubes01: torch.Tensor, normalized: bool,
                      eps: float = 1e-6) -> torch.Tensor:
    """Predictions in target space -> pixels in [0, 1].

    Args:
        pred: [M, tubelet*p*p*C] predictions (feature index ((t*p+h)*p+w)*C + c).
        cubes01: [M, tubelet*p*p, C] the same cubes' true pixels in [0, 1].
        normalized: Whether the targets were per-cube normalised (``normalize_target``).
        eps: The eps added to the std by the target normalisation.

    Returns:
        [M, tubelet*p*p, C]: ``pred * (std + eps) + mean`` with the cube's unbiased std and
        mean per channel (the exact inverse of the target normalisation), clamped to [0, 1].
    """
    x = pred.float().reshape(cubes01.shape)
    if normalized:
        mean = cubes01.mean(dim=-2, keepdim=True)
        std = cubes01.var(dim=-2, unbiased=True, keepdim=True).sqrt()
        x = x * (std + eps) + mean
    return x.clamp(0, 1)


def reconstruct_clip(model, cfg, video: str, start_sec: float = 0.0, seed: int = 0) -> dict:
    """Run the pretrainer on one clip of ``video``.

    Returns:
        dict: ``frames`` uint8 [T, S, S, 3] input; ``enc_hidden`` / ``dec_kept`` / ``loss_mask``
        bool [T', H', W'] on the token grid; ``recon`` uint8 [T, S, S, 3] — input pixels on
        encoder-visible cubes, un-normalised predictions on decoder-kept hidden cubes, grey
        elsewhere; ``recon_loss`` (float, the pretrainer's loss for this clip); ``grid``.
    """
    from mmaction.structures import ActionDataSample
    from vmae2_mm.models.backbones.vit_layers import cube_view
    from vmae2_mm.models.pretrainers.targets import gather_cubes
    enc = model.encoder
    p, tub = model.patch_size, model.tubelet_size
    size, clip_len = int(enc.img_size), int(enc.num_frames)
    ds_cfg = cfg.train_dataloader.dataset
    interval = int(ds_cfg.get('frame_interval', 1))
    frames = read_clip(video, clip_len, interval, size, start_sec)
    results = {}
    for t in _mask_transforms(cfg, seed):
        results = t(results)
    enc_hidden = torch.as_tensor(results['enc_hidden']).bool()
    dec_kept = torch.as_tensor(results.get('dec_kept', results['enc_hidden'])).bool()
    grid = (clip_len // tub, size // p, size // p)
    if enc_hidden.numel() != int(np.prod(grid)):
        raise ValueError(f'mask grid {tuple(enc_hidden.shape)} does not match the token grid '
                         f'{grid} of the encoder ({clip_len}x{size}x{size}, patch {p})')
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float()  # [1, 3, T, S, S], 0-255
    # normalised as the data preprocessor does for training (the pretrainer's explicit stats)
    mean = torch.zeros(3) if model.input_mean is None else model.input_mean.flatten().cpu()
    std = torch.ones(3) if model.input_std is None else model.input_std.flatten().cpu()
    device = next(model.parameters()).device
    inputs = ((x - mean.view(1, 3, 1, 1, 1)) / std.view(1, 3, 1, 1, 1)).to(device)
    sample = ActionDataSample()
    sample.set_field(enc_hidden.reshape(-1), 'enc_hidden')
    sample.set_field(dec_kept.reshape(-1), 'dec_kept')
    with torch.no_grad():
        out = model(inputs, [sample], mode='predict')[0]
    pred = out.pred_pixels.cpu()
    kept = dec_kept.reshape(1, -1)
    cubes01 = gather_cubes(x / model.pixel_max, p, tub, kept)[0]  # [N_kept, tub*p*p, 3]
    pix = unnormalize_cubes(pred, cubes01, model.normalize_target, model.target_eps)
    # assemble: input on visible cubes, predictions on kept hidden cubes, grey elsewhere
    recon = torch.full_like(x, GREY / 255.0)
    view = cube_view(recon, p, tub)  # [1, T', H', W', tub, p, p, C] view of recon
    src = cube_view(x / 255.0, p, tub)
    visible = ~enc_hidden.reshape(grid)
    view[0][visible] = src[0][visible]
    kept_hidden = (dec_kept & enc_hidden).reshape(grid)
    order = dec_kept.reshape(grid).nonzero(as_tuple=False)
    lm = out.loss_mask.cpu().bool()
    for i, (t_, h_, w_) in enumerate(order.tolist()):
        if lm[i]:
            view[0, t_, h_, w_] = pix[i].reshape(view.shape[4:])
    recon_u8 = (recon[0].permute(1, 2, 3, 0) * 255).round().clamp(0, 255).byte().numpy()
    return dict(frames=frames, enc_hidden=enc_hidden.reshape(grid).numpy(),
                dec_kept=dec_kept.reshape(grid).numpy(), loss_mask=kept_hidden.numpy(),
                recon=recon_u8,
                recon_loss=float(out.recon_loss), grid=grid, patch_size=p, tubelet_size=tub)


def _masked(frames: np.ndarray, show: np.ndarray, p: int, tub: int) -> np.ndarray:
    """Frames [T, S, S, 3] with cubes where ``show`` [T', H', W'] is False set to grey."""
    full = np.repeat(np.repeat(np.repeat(np.asarray(show, bool), tub, 0), p, 1), p, 2)
    out = frames.copy()
    out[~full] = GREY
    return out


def render_grid(result: dict, gap: int = 2, scale: int = 1,
                rows: Sequence[str] = ('input', 'visible', 'targets', 'reconstruction')):
    """uint8 RGB image [4*(S+gap), T'*(S+gap), 3]: one row per stage, one column per tubelet
    (its first frame). ``visible`` shows the cubes the encoder sees, ``targets`` the cubes the
    loss reconstructs (hidden from the encoder and kept by the decoder)."""
    p, tub = result['patch_size'], result['tubelet_size']
    frames = result['frames']
    stages = dict(input=frames,
                  visible=_masked(frames, ~result['enc_hidden'], p, tub),
                  targets=_masked(frames, result['loss_mask'], p, tub),
                  reconstruction=result['recon'])
    t_cols = frames.shape[0] // tub
    s = frames.shape[1]
    img = np.full((len(rows) * (s + gap) - gap, t_cols * (s + gap) - gap, 3), 255, np.uint8)
    for r, name in enumerate(rows):
        for c in range(t_cols):
            img[r * (s + gap):r * (s + gap) + s, c * (s + gap):c * (s + gap) + s] = \
                stages[name][c * tub]
    if scale > 1:
        img = np.repeat(np.repeat(img, scale, 0), scale, 1)
    return img


__all__ = ['init_pretrainer', 'read_clip', 'unnormalize_cubes', 'reconstruct_clip',
           'render_grid']

"""VideoMAE V2 dual-masking pre-training model (arXiv 2303.16727)."""
import contextlib
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmaction.registry import MODELS
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel
from torch import Tensor, nn

from vmae2_mm.utils.pos_embed import sinusoid_table

from ..backbones.vit_layers import init_official_vit
from ..backbones.vit_videomaev2 import VideoMAEv2ViT
from .decoder import VideoMAEv2Decoder, decoder_settings
from .targets import gather_cubes, masked_mse, normalize_cubes

# encoder options the pretrainer fixes: the official pre-training encoder has a final norm, no
# pooling, and a sinusoid table built natively for its own token grid
_FIXED_ENCODER_KEYS = ('use_mean_pooling', 'out_type', 'pos_embed_grid_from')


@MODELS.register_module()
class VideoMAEv2Pretrainer(BaseModel):
    """Masked video autoencoder with dual masking (VideoMAE V2; VideoMAE v1 without ``dec_kept``).

    The encoder (:class:`VideoMAEv2ViT`, final ``norm``, no pooling) runs on the tokens the
    encoder mask leaves visible; ``encoder_to_decoder`` (bias-free) projects them to the decoder
    width; the decoder input is ``[visible tokens + pos, mask_token + pos at every decoder-kept
    position]`` (each group in raster order, fixed sinusoid positions of the decoder width); the
    decoder predicts the kept positions' pixels. The loss is the MSE against per-cube normalised
    pixels averaged **only over tokens hidden from the encoder and kept by the decoder** (704 of
    784 at 16x224^2, tube 0.9, running cell 0.5), as the released code does.

    Masks come from the data pipeline (:mod:`vmae2_mm.datasets.transforms.masking`) in each data
    sample: ``enc_hidden`` [N] bool (True = hidden from the encoder) and optionally ``dec_kept``
    [N] bool (True = reconstructed); without ``dec_kept`` the decoder reconstructs exactly the
    hidden tokens (VideoMAE v1, equal to HF ``VideoMAEForPreTraining``).

    Parameter names equal the official pre-training model's (``encoder.patch_embed.proj``,
    ``encoder.blocks.i``, ``encoder.norm``, ``encoder_to_decoder``, ``mask_token``,
    ``decoder.blocks.i``, ``decoder.norm``, ``decoder.head``), so official checkpoints load as
    they are and our checkpoints load into :class:`VideoMAEv2ViT` for fine-tuning.

    Args:
        encoder (dict): :class:`VideoMAEv2ViT` arguments (``arch``, ``img_size``,
            ``num_frames``, ``tubelet_size``, ``drop_path_rate``, ``with_cp``, ``attn_impl``,
            ...). ``use_mean_pooling``, ``out_type`` and ``pos_embed_grid_from`` are fixed.
            Defaults to ``dict(arch='base')``.
        decoder (dict, optional): Overrides of the decoder settings (``embed_dims``,
            ``num_heads``, ``depth``, ``mlp_hidden_dims``/``mlp_ratio``, ``drop_path_rate``,
            ``with_cp``, ``attn_impl``). Named encoder sizes default to the official decoders
            (S 192/3, B 384/6, L/H/g 512/8, depth 4, the encoder's MLP ratio).
        normalize_target (bool): Per-cube normalised pixel targets. Defaults to True.
        target_eps (float): Added to the per-cube std. Defaults to 1e-6.
        pixel_max (float): Raw pixel range of the data (255 for uint8 frames); the target is
            computed on ``un-normalised inputs / pixel_max`` in [0, 1]. Defaults to 255.
        input_mean (Sequence[float], optional): Per-channel mean the inputs were normalised
            with (raw pixel units), undone before the target is computed. None: taken from
            the ``data_preprocessor`` config's ``mean`` (or the built preprocessor's ``mean``
            buffer); no ``mean`` there means un-normalised inputs. Given together with a
            preprocessor that has another mean, it is an error.
        input_std (Sequence[float], optional): The same for the std.
        fp32_decoder (bool): Run projector, decoder and loss in fp32 even under fp16/bf16
            autocast (the paper's recipe; the released code autocasts everything).
            Defaults to False.
        check_finite (bool): Raise ``FloatingPointError`` on a non-finite loss, before any
            optimizer step (the official script aborts too). Defaults to True.
        data_preprocessor (dict, optional): Defaults to mmaction's ``ActionDataPreprocessor``
            with ImageNet mean/std in 0-255 units and format ``NCTHW``.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)`` loads an
            official, HF or vmae2_mm pre-training checkpoint.
    """

    def __init__(self,
                 encoder: Optional[dict] = None,
                 decoder: Optional[dict] = None,
                 normalize_target: bool = True,
                 target_eps: float = 1e-6,
                 pixel_max: float = 255.,
                 input_mean: Optional[Sequence[float]] = None,
                 input_std: Optional[Sequence[float]] = None,
                 fp32_decoder: bool = False,
                 check_finite: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ActionDataPreprocessor',
                                     mean=[123.675, 116.28, 103.53],
                                     std=[58.395, 57.12, 57.375], format_shape='NCTHW')
        stats = _input_stats(data_preprocessor, input_mean, input_std)
        if isinstance(data_preprocessor, dict):
            # mmaction's registry, so the model also builds outside a Runner's default scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # [C] statistics the targets undo (non-persistent: config values, not weights)
        for name, value in zip(('input_mean', 'input_std'), stats):
            self.register_buffer(name, None if value is None else torch.tensor(
                value, dtype=torch.float32), persistent=False)
        encoder = dict(encoder or dict(arch='base'))
        fixed = [k for k in _FIXED_ENCODER_KEYS if k in encoder]
        if fixed:
            raise ValueError(f'VideoMAEv2Pretrainer: encoder keys {fixed} are fixed by the '
                             'pre-training model (final norm, token output, native sinusoid '
                             'table); remove them')
        if pixel_max <= 0:
            raise ValueError(f'VideoMAEv2Pretrainer: pixel_max must be > 0, got {pixel_max}')
        if target_eps < 0:
            raise ValueError(f'VideoMAEv2Pretrainer: target_eps must be >= 0, got {target_eps}')
        encoder.update(use_mean_pooling=False, out_type='tokens', pos_embed_grid_from=None)
        self.encoder = VideoMAEv2ViT(**encoder)
        enc = self.encoder
        dec_cfg = decoder_settings(encoder.get('arch', 'base'), enc.embed_dims,
                                   enc.arch['mlp_hidden_dims'], decoder)
        self.patch_size = enc.patch_size
        self.tubelet_size = enc.tubelet_size
        self.out_dims = 3 * enc.tubelet_size * enc.patch_size**2
        self.decoder = VideoMAEv2Decoder(out_dims=self.out_dims, **dec_cfg)
        dd = dec_cfg['embed_dims']
        self.encoder_to_decoder = nn.Linear(enc.embed_dims, dd, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        num_tokens = int(np.prod(enc.grid))
        # fixed, like the official plain-tensor table: never in the state dict
        self.register_buffer('decoder_pos_embed', sinusoid_table(num_tokens, dd),
                             persistent=False)
        self.normalize_target = normalize_target
        self.target_eps = target_eps
        self.pixel_max = float(pixel_max)
        self.fp32_decoder = fp32_decoder
        self.check_finite = check_finite
        self._init_official()

    def _init_official(self) -> None:
        """Official pre-training init: xavier-uniform Linears in encoder and decoder,
        ``encoder_to_decoder`` left at PyTorch's default, ``mask_token`` trunc-normal(.02) cut at
        +-0.02 (the official local wrapper truncates at one std)."""
        init_official_vit(self.encoder, mode='xavier')
        init_official_vit(self.decoder, mode='xavier')
        nn.init.trunc_normal_(self.mask_token, std=.02, a=-.02, b=.02)

    def init_weights(self) -> None:
        """Load ``init_cfg=dict(type='Pretrained', checkpoint=...)`` through our key map
        (mmengine's loader cannot read ``model``/``module`` nesting or HF names); otherwise keep
        the official init done at construction."""
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            from vmae2_mm.checkpoint.pretrain import load_pretrain_checkpoint
            load_pretrain_checkpoint(self, self.init_cfg['checkpoint'],
                                     strict=self.init_cfg.get('strict', True),
                                     logger=MMLogger.get_current_instance())
        self._is_init = True

    # ------------------------------------------------------------------ masks
    def _masks(self, inputs: Tensor, data_samples) -> Tuple[Tensor, Tensor]:
        """Stack ``enc_hidden`` / ``dec_kept`` from the data samples -> two [B, N] bool."""
        if data_samples is None:
            raise ValueError('VideoMAEv2Pretrainer needs data_samples carrying enc_hidden masks')
        n = int(np.prod(self.encoder.patch_embed.grid(inputs)))

        def stack(key: str) -> Optional[Tensor]:
            if not all(key in ds for ds in data_samples):
                if any(key in ds for ds in data_samples):
                    raise KeyError(f"only some data samples carry '{key}'")
                return None
            masks = torch.stack([torch.as_tensor(ds.get(key)).to('cpu', torch.bool)
                                 for ds in data_samples]).to(inputs.device)
            if masks.shape != (inputs.shape[0], n):
                raise ValueError(f"'{key}' masks have shape {tuple(masks.shape)}, expected "
                                 f'[B, N] = {(inputs.shape[0], n)} for inputs '
                                 f'{tuple(inputs.shape)}; check the masking grid')
            return masks

        enc_hidden = stack('enc_hidden')
        if enc_hidden is None:
            raise KeyError("data samples carry no 'enc_hidden' mask: add TubeMasking to the "
                           "pipeline and PackActionInputs(algorithm_keys=('enc_hidden', "
                           "'dec_kept'))")
        dec_kept = stack('dec_kept')
        if dec_kept is None:
            dec_kept = enc_hidden
        for name, m in (('enc_hidden', enc_hidden), ('dec_kept', dec_kept)):
            counts = m.sum(1)
            if (counts != counts[0]).any():
                raise ValueError(f'every sample must have the same number of {name} tokens, '
                                 f'got {counts.tolist()}')
        return enc_hidden, dec_kept

    @staticmethod
    def _flatten_views(inputs: Tensor) -> Tensor:
        # ActionDataPreprocessor keeps the clip axis: [B, 1, C, T, H, W]
        if inputs.dim() == 6:
            if inputs.shape[1] != 1:
                raise ValueError('pre-training takes one clip per data sample (masks are per '
                                 f'sample); got {inputs.shape[1]} clips. Use num_sample for '
                                 'repeated augmentation instead')
            inputs = inputs[:, 0]
        if inputs.dim() != 5:
            raise ValueError(f'inputs must be [B, C, T, H, W], got {tuple(inputs.shape)}')
        return inputs

    # ---------------------------------------------------------------- forward
    def _decoder_ctx(self, x: Tensor):
        if self.fp32_decoder and torch.is_autocast_enabled(x.device.type):
            return torch.autocast(device_type=x.device.type, enabled=False)
        return contextlib.nullcontext()

    def reconstruct(self, inputs: Tensor, enc_hidden: Tensor, dec_kept: Tensor) -> Tensor:
        """Predict the pixels of the decoder-kept tokens.

        Args:
            inputs (Tensor): [B, C, T, H, W] normalised video.
            enc_hidden (Tensor): [B, N] bool, True = hidden from the encoder.
            dec_kept (Tensor): [B, N] bool, True = reconstructed.

        Returns:
            Tensor: [B, N_kept, 3*tubelet*p*p] predictions in the raster order of the kept
            positions (fp32 when ``fp32_decoder``).
        """
        # the backbone embeds only the visible cubes (CubeEmbed.forward_visible)
        x = self.encoder.forward_tokens(inputs, enc_hidden)
        with self._decoder_ctx(x):
            if self.fp32_decoder:
                x = x.float()
            x = self.encoder_to_decoder(x)
            b, _, dd = x.shape
            if self.decoder_pos_embed.shape[1] != enc_hidden.shape[1]:
                raise ValueError(f'decoder position table covers {self.decoder_pos_embed.shape[1]} '
                                 f'tokens but the input has {enc_hidden.shape[1]}; build the '
                                 'pretrainer with the img_size/num_frames of the data')
            pos = self.decoder_pos_embed.to(x.dtype).expand(b, -1, -1)
            vis_pos = pos[~enc_hidden].reshape(b, -1, dd)
            kept_pos = pos[dec_kept].reshape(b, -1, dd)
            x = torch.cat([x + vis_pos, self.mask_token.to(x.dtype) + kept_pos], dim=1)
            return self.decoder(x, kept_pos.shape[1])

    def targets(self, inputs: Tensor, kept: Optional[Tensor] = None) -> Tensor:
        """[B, C, T, H, W] normalised inputs -> [B, N, 3*tubelet*p*p] fp32 pixel targets
        (only the ``kept`` [B, N] bool cubes, [B, N_kept, ...], when given).

        The inputs' normalisation is undone exactly (``input_mean`` / ``input_std``), then the
        pixels are scaled to [0, 1] by ``pixel_max``. Both are per-channel maps, so they are
        applied to the gathered cubes only: no full-video fp32 copy is made.
        """
        with torch.no_grad():
            # [B, N_kept, tubelet*p*p, C], channels last
            x = gather_cubes(inputs, self.patch_size, self.tubelet_size, kept).float()
            if self.input_mean is not None:
                x = x * self.input_std + self.input_mean
            x = x / self.pixel_max
            return normalize_cubes(x, self.normalize_target, self.target_eps)

    def _loss_and_pred(self, inputs, data_samples):
        inputs = self._flatten_views(inputs)
        enc_hidden, dec_kept = self._masks(inputs, data_samples)
        b = inputs.shape[0]
        loss_mask = enc_hidden[dec_kept].reshape(b, -1)
        if not loss_mask.any():
            raise ValueError('no token is both hidden from the encoder and kept by the '
                             'decoder: the loss would be empty')
        # targets first: their temporaries then come and go before any activation is saved,
        # instead of adding to the peak at the end of the forward pass
        labels = self.targets(inputs, dec_kept)  # [B, N_kept, D], kept cubes only
        pred = self.reconstruct(inputs, enc_hidden, dec_kept)
        with self._decoder_ctx(pred):
            loss = masked_mse(pred.float(), labels, loss_mask)
        return loss, pred, labels, loss_mask

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """Reconstruction loss; raises ``FloatingPointError`` on a non-finite value."""
        loss, *_ = self._loss_and_pred(inputs, data_samples)
        if self.check_finite and not torch.isfinite(loss):
            it = MessageHub.get_current_instance().get_info('iter')
            where = f'at iteration {it}' if it is not None else 'outside a Runner loop'
            raise FloatingPointError(
                f'VideoMAEv2Pretrainer: non-finite reconstruction loss ({loss.item()}) {where}; '
                'stopped before the optimizer step so no NaN weights reach a checkpoint. Lower '
                'the learning rate, enable clip_grad, or set fp32_decoder=True under AMP.')
        return dict(loss=loss)

    def predict(self, inputs: Tensor, data_samples) -> List:
        """Reconstructions: each data sample gets ``pred_pixels`` [N_kept, D], ``target_pixels``
        [N_kept, D], ``loss_mask`` [N_kept] bool and its per-sample ``recon_loss``."""
        _, pred, labels, loss_mask = self._loss_and_pred(inputs, data_samples)
        per_token = (pred.float() - labels).pow(2).mean(-1)
        for i, ds in enumerate(data_samples):
            w = loss_mask[i].float()
            ds.set_field(pred[i].detach(), 'pred_pixels')
            ds.set_field(labels[i], 'target_pixels')
            ds.set_field(loss_mask[i], 'loss_mask')
            ds.set_field((per_token[i] * w).sum() / w.sum().clamp(min=1), 'recon_loss')
        return data_samples

    def forward(self, inputs: Tensor, data_samples=None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], List, Tensor]:
        """``mode``: ``'loss'`` -> dict(loss), ``'predict'`` -> data samples with
        reconstructions, ``'tensor'`` -> predictions [B, N_kept, 3*tubelet*p*p]."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            inputs = self._flatten_views(inputs)
            return self.reconstruct(inputs, *self._masks(inputs, data_samples))
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")


def _stats_of(pre) -> Tuple[Optional[list], Optional[list]]:
    """(mean, std) a data preprocessor (config dict or module) normalises with, or Nones."""
    if isinstance(pre, dict):
        mean, std = pre.get('mean'), pre.get('std')
    else:  # a built preprocessor keeps them as buffers only when it normalises
        mean, std = getattr(pre, 'mean', None), getattr(pre, 'std', None)
    if (mean is None) != (std is None):
        raise ValueError('VideoMAEv2Pretrainer: data_preprocessor has only one of mean/std')
    def as_list(v):
        if v is None:
            return None
        v = v.detach().cpu().numpy() if isinstance(v, Tensor) else v  # numpy: also under meta
        return [float(e) for e in np.asarray(v, dtype=np.float64).ravel()]

    return as_list(mean), as_list(std)


def _input_stats(pre, mean, std) -> Tuple[Optional[list], Optional[list]]:
    """Resolve ``input_mean`` / ``input_std`` against the preprocessor (see the class Args)."""
    if (mean is None) != (std is None):
        raise ValueError('VideoMAEv2Pretrainer: give both input_mean and input_std, or neither')
    pre_mean, pre_std = _stats_of(pre)
    if mean is None:
        return pre_mean, pre_std
    mean, std = [float(e) for e in mean], [float(e) for e in std]
    if len(mean) != len(std) or any(s <= 0 for s in std):
        raise ValueError(f'VideoMAEv2Pretrainer: input_mean {mean} / input_std {std} must have '
                         'one entry per channel, std > 0')
    if pre_mean is not None and not np.allclose([mean, std], [pre_mean, pre_std]):
        raise ValueError(f'VideoMAEv2Pretrainer: input_mean/std {mean}/{std} differ from the '
                         f'data_preprocessor mean/std {pre_mean}/{pre_std}; the targets would '
                         'undo a normalisation the inputs never had')
    return mean, std


__all__ = ['VideoMAEv2Pretrainer']

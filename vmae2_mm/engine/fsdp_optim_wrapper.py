"""Optim wrapper for FSDP: bf16 autocast and gradient-norm clipping over all shards."""
from contextlib import contextmanager

from mmaction.registry import OPTIM_WRAPPERS
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel

from .autocast_optim_wrapper import AutocastOptimWrapper


@OPTIM_WRAPPERS.register_module()
class FSDPOptimWrapper(AutocastOptimWrapper):
    """:class:`AutocastOptimWrapper` whose ``clip_grad`` norm is that of the whole model.

    Under FSDP each rank holds only a shard of every gradient, so mmengine's
    ``OptimWrapper`` (``torch.nn.utils.clip_grad_norm_`` over this rank's parameters) would
    clip with a per-rank partial norm: a different, too small norm on every rank. This wrapper
    calls ``FullyShardedDataParallel.clip_grad_norm_`` on the root FSDP module (seen in
    :meth:`optim_context`, which mmengine's ``train_step`` enters with the wrapped model), which
    all-reduces the squared shard norms. ``clip_grad=dict(type='value', ...)`` is element-wise
    and stays local. The logged ``grad_norm`` is the global one.

    Mixed precision is bf16 autocast (fp32 sharded master parameters, no loss scaler) rather
    than FSDP's ``MixedPrecision`` parameter casting, which would hand bf16 weights to the
    parts that deliberately run in fp32 (the pretrainer's ``fp32_decoder``, fp32 buffers such
    as the sinusoid position table).

    Args:
        dtype (str | None): ``'bfloat16'`` (default), ``'float16'`` or ``None`` for fp32.
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self, *args, dtype='bfloat16', **kwargs) -> None:
        self._fp32 = dtype is None
        super().__init__(*args, dtype=dtype or 'bfloat16', **kwargs)
        self._fsdp_root = None

    @contextmanager
    def optim_context(self, model: nn.Module):
        if isinstance(model, FullyShardedDataParallel):
            self._fsdp_root = model
        if self._fp32:
            with super(AutocastOptimWrapper, self).optim_context(model):
                yield
        else:
            with super().optim_context(model):
                yield

    def _clip_grad(self) -> None:
        if self.grad_name != 'grad_norm' or self._fsdp_root is None:
            # value clipping, or a model that is not FSDP-wrapped: local == global
            super()._clip_grad()
            return
        grad = self._fsdp_root.clip_grad_norm_(**self.clip_grad_kwargs)
        self.message_hub.update_scalar(f'train/{self.grad_name}', float(grad))


__all__ = ['FSDPOptimWrapper']

"""Optimizer wrapper that runs the forward pass under autocast on any device (incl. CPU)."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmaction.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` + ``torch.autocast`` on the model's device, without a loss scaler.

    mmengine's ``AmpOptimWrapper`` asserts CUDA/NPU/MLU, so ``--amp`` cannot run on a CPU.
    bfloat16 has fp32's exponent range and needs no loss scaling, so this wrapper is the CPU
    (and optional GPU bf16) mixed-precision path; fp16 on GPUs should keep using
    ``AmpOptimWrapper`` with its dynamic loss scale.

    Args:
        dtype (str): ``'bfloat16'`` (default) or ``'float16'`` (CPU fp16 autocast is slow).
        **kwargs: ``OptimWrapper`` arguments.
    """

    def __init__(self, *args, dtype: str = 'bfloat16', **kwargs) -> None:
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f"dtype must be 'bfloat16' or 'float16', got {dtype!r}")
        super().__init__(*args, **kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model):
            param = next(model.parameters(), None)
            device_type = param.device.type if param is not None else 'cpu'
            with torch.autocast(device_type=device_type, dtype=self.cast_dtype):
                yield

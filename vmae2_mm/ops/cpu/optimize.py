"""One explicit call that puts a model's linears on this CPU's faster fp32 inference path."""
from typing import Union

from torch import nn

from .onednn_linear import OneDNNLinear, onednn_available, onednn_preferred


def optimize_for_cpu_inference(model: nn.Module, linears: Union[bool, str] = 'auto') -> int:
    """Swap every plain ``nn.Linear`` of ``model`` for :class:`OneDNNLinear` (or back).

    The swap changes only the class of each module: parameters, state-dict keys, hooks and
    ``isinstance(m, nn.Linear)`` stay, so tools that wrap or hook linears (LoRA, quantisers,
    profilers) still see them. :class:`OneDNNLinear` runs oneDNN only for fp32 CPU inference
    (no gradient recorded, no autocast) and ``F.linear`` otherwise, so an optimised model still
    trains and runs on GPUs. The result differs from BLAS only in the fp32 summation order.

    Attention backends are chosen when the model is built (``attn_impl``), not here.

    Args:
        model (nn.Module): Any model.
        linears (bool | str): ``'auto'``: oneDNN where it is faster than BLAS on this CPU
            (:func:`~vmae2_mm.ops.cpu.onednn_linear.onednn_preferred`), else leave the model
            as it is; ``True``: oneDNN wherever torch has it; ``False``: back to plain
            ``nn.Linear``.

    Returns:
        int: Number of modules whose class changed.
    """
    if linears not in ('auto', True, False):
        raise ValueError(f"optimize_for_cpu_inference: linears must be 'auto', True or False, "
                         f'got {linears!r}')
    if linears == 'auto':
        if not onednn_preferred():
            return 0
        linears = True
    if linears and not onednn_available():
        raise RuntimeError('optimize_for_cpu_inference(linears=True): this torch build has no '
                           'oneDNN linear (torch.ops.mkldnn._linear_pointwise)')
    src, dst = (nn.Linear, OneDNNLinear) if linears else (OneDNNLinear, nn.Linear)
    changed = 0
    for module in model.modules():
        if type(module) is src:
            module.__class__ = dst
            changed += 1
    return changed


__all__ = ['optimize_for_cpu_inference']

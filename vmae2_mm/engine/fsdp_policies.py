"""FSDP wrapping and activation-checkpointing policies: one FSDP unit per transformer block.

Registered in mmengine's root ``FUNCTIONS`` registry because ``MMFullyShardedDataParallel``
(``auto_wrap_policy``) and ``FSDPStrategy`` (``activation_checkpointing.check_fn``) look the
names up there with the scope switched off. Config::

    strategy = dict(
        type='GroupedFSDPStrategy',
        model_wrapper=dict(auto_wrap_policy='videomaev2_block_wrap_policy', use_orig_params=True),
        activation_checkpointing=dict(check_fn='videomaev2_is_block'))
"""
from mmengine.registry import FUNCTIONS
from torch import nn
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

from ..models.backbones.vit_layers import Block

#: transformer block classes that become their own FSDP unit / checkpointed region (the
#: encoder's and the pretraining decoder's blocks share this class)
BLOCK_CLASSES = {Block}


@FUNCTIONS.register_module()
def videomaev2_block_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """FSDP ``auto_wrap_policy``: wrap every VideoMAE V2 transformer block separately.

    A block is the natural unit: its parameters are all-gathered just before it runs and freed
    right after, so peak parameter memory is one block's full weights plus the shards
    (ViT-g: ~25M parameters per block). Everything else (cube embedding, norms, head, decoder
    projections) stays in the root unit.
    """
    return transformer_auto_wrap_policy(module, recurse, nonwrapped_numel,
                                        transformer_layer_cls=BLOCK_CLASSES)


@FUNCTIONS.register_module()
def videomaev2_is_block(module: nn.Module) -> bool:
    """``check_fn`` of ``apply_activation_checkpointing``: recompute each block in backward
    (the same regions as the backbone's ``with_cp=True``, which should then be off)."""
    return isinstance(module, tuple(BLOCK_CLASSES))


__all__ = ['videomaev2_block_wrap_policy', 'videomaev2_is_block', 'BLOCK_CLASSES']

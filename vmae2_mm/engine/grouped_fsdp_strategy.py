"""mmengine ``FSDPStrategy`` that builds the optimizer's parameter groups before sharding."""
import copy
from typing import Optional, Union

from mmengine._strategy import FSDPStrategy
from mmengine.config import ConfigDict
from mmengine.optim import BaseOptimWrapper, build_optim_wrapper
from mmengine.registry import STRATEGIES
from torch import nn


@STRATEGIES.register_module()
class GroupedFSDPStrategy(FSDPStrategy):
    """``FSDPStrategy`` whose per-parameter groups are decided on the unsharded model.

    With ``use_orig_params=True`` FSDP keeps the original ``nn.Parameter`` objects but turns
    each into a flat 1-D view of this rank's shard, and the parameter names gain
    ``_fsdp_wrapped_module.`` / ``_checkpoint_wrapped_module.`` parts. Optimizer constructors
    that look at ``param.ndim`` (no weight decay for 1-D parameters: mmengine's
    ``flat_decay_mult``, our layer-decay constructor) or at names (``backbone.blocks.<i>.``
    layer ids, ``custom_keys``) would then silently put every parameter into the wrong group
    when run on the wrapped model, as ``FSDPStrategy`` does for a config dict. Here the optim
    wrapper is built from its config on the plain model first (true shapes and names), and the
    optimizer keeps working after wrapping because it holds the same parameter objects.

    Requires ``model_wrapper.use_orig_params=True`` (mmengine's default); with flat parameters
    the original objects are replaced and a clear error is raised.

    Args:
        **kwargs: ``FSDPStrategy`` arguments (``model_wrapper``, ``activation_checkpointing``,
            ``state_dict_cfg``, ``skip_init_weights``, ...).
    """

    def prepare(self, model: Union[nn.Module, dict], *, optim_wrapper=None, param_scheduler=None,
                compile: Union[dict, bool] = False, dispatch_kwargs: Optional[dict] = None):
        if not self._prepared and isinstance(optim_wrapper, dict):
            model = self.build_model(model)
            cfg = copy.deepcopy(optim_wrapper)
            if cfg.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
                # FSDPStrategy does the same for a dict: gradients are sharded, so the loss
                # scaler must check inf/nan across ranks (ShardedGradScaler)
                cfg.setdefault('use_fsdp', True)
            optim_wrapper = build_optim_wrapper(model, cfg)
        return super().prepare(model, optim_wrapper=optim_wrapper,
                               param_scheduler=param_scheduler, compile=compile,
                               dispatch_kwargs=dispatch_kwargs)

    def build_optim_wrapper(self, optim_wrapper: Union[BaseOptimWrapper, dict, ConfigDict],
                            model: Optional[nn.Module] = None) -> BaseOptimWrapper:
        """Keep an optim wrapper built in :meth:`prepare` when the wrapped ``model`` still owns
        every parameter it optimises (``use_orig_params=True``); anything else goes to
        ``FSDPStrategy``."""
        if not isinstance(optim_wrapper, BaseOptimWrapper) or model is None:
            return super().build_optim_wrapper(optim_wrapper, model)
        owned = {id(p) for p in model.parameters()}
        optimised = [p for group in optim_wrapper.optimizer.param_groups for p in group['params']]
        missing = sum(id(p) not in owned for p in optimised)
        if missing:
            raise RuntimeError(
                f'GroupedFSDPStrategy: {missing} of {len(optimised)} optimised parameters are '
                'not parameters of the FSDP-wrapped model; set '
                'strategy.model_wrapper.use_orig_params=True')
        return optim_wrapper


__all__ = ['GroupedFSDPStrategy']

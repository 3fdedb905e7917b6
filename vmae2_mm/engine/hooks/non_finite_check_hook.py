"""Stop any run on a non-finite loss, and never write a checkpoint with non-finite weights.

Why our own hook: mmengine's ``OptimWrapper`` steps on whatever loss it is given (only the fp16
``AmpOptimWrapper`` skips steps, and only for non-finite *gradients* of the scaled loss), and
``CheckpointHook`` writes whatever the model holds. A NaN from an exploding lr, an fp16
overflow or a broken input then trains on silently, and ``save_best`` even deletes the
previous best checkpoint before writing the new one. mmaction2's recognizers, mmdet's
detectors, our ActionFormer and the distiller all compute their total loss in
``BaseModel.parse_losses``; this hook checks each loss term there, for every model, before
``optim_wrapper.update_params`` runs.
"""
import math
from typing import Dict, Optional

import torch
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import BaseModel
from mmengine.registry import HOOKS
from mmengine.runner import BaseLoop


def _first_non_finite(tensors: Dict[str, torch.Tensor]) -> Optional[str]:
    """Name of the first floating-point tensor holding a NaN or inf, else None."""
    for name, value in tensors.items():
        if (isinstance(value, torch.Tensor) and value.is_floating_point()
                and not bool(torch.isfinite(value).all())):
            return name
    return None


def _zero3_shard(param: torch.Tensor) -> Optional[torch.Tensor]:
    """The valid part of this rank's partition of a DeepSpeed ZeRO-3 parameter, else None.

    Under ZeRO-3 ``param.data`` is an empty placeholder (or a transient all-gather buffer)
    and the weight lives in ``param.ds_tensor``, this rank's flat slice of the padded
    parameter; the padding at the end of the last rank's slice is never written
    (``torch.empty``), so only the first ``ds_numel - rank * partition_size`` elements are
    weights.
    """
    shard = getattr(param, 'ds_tensor', None)
    if shard is None or not hasattr(param, 'ds_numel'):
        return None
    import torch.distributed as torch_dist
    group = getattr(param, 'ds_process_group', None)
    rank = torch_dist.get_rank(group) if torch_dist.is_initialized() else 0
    size = int(getattr(shard, 'ds_numel', shard.numel()))
    valid = max(0, min(size, int(param.ds_numel) - rank * size))
    return shard.reshape(-1)[:valid]


def _base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The ``BaseModel`` inside DDP/FSDP (``.module``) and DeepSpeed (``.model.module``)
    wrappers, whose ``parse_losses`` every wrapper's ``train_step`` calls."""
    for _ in range(4):
        if isinstance(model, BaseModel):
            return model
        model = getattr(model, 'module', None) or getattr(model, 'model', None) or model
    return model


@HOOKS.register_module()
class NonFiniteCheckHook(Hook):
    """Raise ``FloatingPointError`` on the first non-finite loss term or weight.

    - every training iteration: each loss term (``loss_cls``, ``loss_bbox``, ...) is checked
      before the optimizer step, so no step is ever taken with a NaN/inf loss; the error names
      the iteration, the epoch and the term;
    - at every point where ``CheckpointHook`` may save (end of epoch, its iteration interval,
      after validation for ``best_*``) the parameters are checked *before* it runs — mmengine
      removes the oldest of ``max_keep_ckpts`` and the previous best before writing the new
      file — and ``before_save_checkpoint`` checks every floating-point tensor written (model
      and EMA state dicts), so no non-finite checkpoint is written and the last finite one is
      never deleted.

    Enabled for every config through ``default_hooks.non_finite`` in
    ``configs/_base_/default_runtime.py``; ``default_hooks.non_finite=None`` removes it.

    Args:
        check_weights (bool): Also check the weights at save/validation time (a pass over all
            parameters; memory-bandwidth bound, about 1 ms per GB on a GPU). Default True.
    """

    # before CheckpointHook (VERY_LOW), so a bad model is caught before any file is touched
    priority = 'ABOVE_NORMAL'

    def __init__(self, check_weights: bool = True) -> None:
        self.check_weights = check_weights

    # ---------------------------------------------------------------- losses
    def before_train(self, runner) -> None:
        model = _base_model(runner.model)
        parse_losses = model.parse_losses
        if getattr(parse_losses, '_vmae2_finite_checked', False):
            return

        def checked_parse_losses(losses):
            loss, log_vars = parse_losses(losses)
            if not bool(torch.isfinite(loss.detach()).all()):
                self._raise_loss(runner, log_vars, loss)
            return loss, log_vars

        checked_parse_losses._vmae2_finite_checked = True
        # an instance attribute: the model's class (mmaction2's, mmdet's) stays untouched,
        # and DDP/FSDP wrappers call ``self.module.parse_losses`` so they see it too
        model.parse_losses = checked_parse_losses

    @staticmethod
    def _raise_loss(runner, log_vars: dict, loss: torch.Tensor) -> None:
        values = {k: float(v.detach() if torch.is_tensor(v) else v) for k, v in log_vars.items()
                  if isinstance(v, (int, float, torch.Tensor)) and k.startswith('loss')}
        bad = [k for k, v in values.items() if not math.isfinite(v) and k != 'loss']
        terms = ', '.join(f'{k}={v:.6g}' for k, v in values.items())
        raise FloatingPointError(
            f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): '
            f'{", ".join(bad) or "loss"} is {float(loss.detach()):.6g} [{terms}]. No optimizer step was '
            'taken and no checkpoint of this state is written; the last checkpoint in '
            f'{runner.work_dir} is finite. Usual causes: lr too high for the batch size, fp16 '
            'overflow (try bf16 or gradient clipping), a bad input batch.')

    # --------------------------------------------------------------- weights
    def _check_state(self, runner, state: Dict[str, torch.Tensor], what: str) -> None:
        name = _first_non_finite(state)
        if name is not None:
            self._raise_weight(runner, name, what)

    @staticmethod
    def _raise_weight(runner, name: str, what: str) -> None:
        raise FloatingPointError(
            f'{what}: weight {name!r} is non-finite (after {runner.iter} training '
            'iterations); nothing is written and no earlier checkpoint is removed. '
            'The run diverged; resume from the last checkpoint in '
            f'{runner.work_dir} with a lower lr.')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.check_weights:
            return
        for key in ('state_dict', 'ema_state_dict'):
            if isinstance(checkpoint.get(key), dict):
                self._check_state(runner, checkpoint[key], f'checkpoint {key}')

    def _check_model(self, runner, what: str) -> None:
        """Every rank checks the weights it holds (its ZeRO-3 shards, else the parameters);
        a non-finite weight on any rank stops all of them, so none waits in a collective."""
        from mmengine import dist
        model = _base_model(runner.model)
        params = {}
        for name, param in model.named_parameters():
            shard = _zero3_shard(param)
            params[name] = param if shard is None else shard
        name = _first_non_finite(params)
        if dist.get_world_size() > 1:
            flag = torch.tensor([0 if name is None else 1], dtype=torch.int64)
            dist.all_reduce(flag, op='sum')
            if name is None and int(flag.item()) > 0:
                name = '(a weight held by another rank)'
        if name is not None:
            self._raise_weight(runner, name, what)

    def after_train_epoch(self, runner) -> None:
        # mmengine's CheckpointHook removes the oldest of ``max_keep_ckpts`` *before* it writes
        # the new one, so the weights are checked here, before it runs
        if self.check_weights:
            self._check_model(runner, f'end of epoch {runner.epoch + 1}')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not self.check_weights:
            return
        for hook in runner.hooks:
            if (isinstance(hook, CheckpointHook) and not hook.by_epoch
                    and (self.every_n_train_iters(runner, hook.interval)
                         or (hook.save_last and self.is_last_train_iter(runner)))):
                self._check_model(runner, f'iteration {runner.iter + 1}')
                return

    def after_val_epoch(self, runner, metrics=None) -> None:
        # only while training: ``runner.train_loop`` would build an unbuilt loop (and its
        # dataloader) in a validation-only run
        if not self.check_weights or not isinstance(getattr(runner, '_train_loop', None),
                                                    BaseLoop):
            return
        self._check_model(runner, 'after validation')

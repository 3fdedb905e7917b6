"""Dataset-vs-model checks run once before a run: labels within the head, features as wide as
the model's input.

The dataset config and the model config are separate blocks, so a list with labels up to 9 fed
to a 5-class head, or 768-wide features fed to a 1408-channel localizer, is only found deep in
the loss (an ``IndexError``/"Target out of bounds") or a convolution's shape error that names
no file, or, at test time, never (impossible labels are silently scored). mmengine has no such
check; :class:`DatasetModelCheckHook` compares what the datasets found when they were built
(:class:`~vmae2_mm.datasets.RecognitionVideoDataset` records its largest label and where,
:class:`~vmae2_mm.datasets.TADFeatureDataset` its feature widths and classes) with the model
before the first iteration of ``runner.train()``, ``runner.val()`` or ``runner.test()``.
"""
from typing import Iterator, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import nn

from .recognition_video_dataset import RecognitionVideoDataset
from .tad_feature_dataset import TADFeatureDataset


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, 'module', model)


def head_num_classes(model: nn.Module) -> Optional[int]:
    """``num_classes`` of the model's ``cls_head`` (recognizer) or ``head`` (localizer)."""
    model = _unwrap(model)
    for name in ('cls_head', 'head'):
        n = getattr(getattr(model, name, None), 'num_classes', None)
        if isinstance(n, int):
            return n
    return None


def input_channels(model: nn.Module) -> Optional[int]:
    """Channels of the first 1-D convolution in the model's ``backbone``: the feature width a
    localizer over [B, C, T] features accepts; None when there is none."""
    backbone = getattr(_unwrap(model), 'backbone', None)
    if backbone is None:
        return None
    for module in backbone.modules():
        if isinstance(module, nn.Conv1d):
            return int(module.in_channels)
    return None


def _built_datasets(runner) -> Iterator[Tuple[str, object]]:
    # only loops that exist already: touching runner.train_loop would build one in test()
    for name in ('_train_loop', '_val_loop', '_test_loop'):
        loop = getattr(runner, name, None)
        dataset = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
        if dataset is not None:
            yield name.strip('_').replace('_loop', ''), dataset


@HOOKS.register_module()
class DatasetModelCheckHook(Hook):
    """Before the run, check every built dataset against the model.

    * Recognition lists: a label >= the head's ``num_classes`` raises, naming the list line of
      the largest label and both numbers; a head larger than the largest label + 1 is logged.
    * TAD features: a feature width other than the localizer's input channels raises, naming a
      video's feature file; more classes in the annotations than the head has raises.

    Add it to ``default_hooks`` (``dataset_check=dict(type='DatasetModelCheckHook')``).
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        num_classes = head_num_classes(runner.model)
        for split, dataset in _built_datasets(runner):
            if isinstance(dataset, RecognitionVideoDataset):
                self._check_labels(runner, dataset, num_classes)
            elif isinstance(dataset, TADFeatureDataset):
                self._check_features(split, dataset, runner.model, num_classes)

    @staticmethod
    def _check_labels(runner, dataset: RecognitionVideoDataset,
                      num_classes: Optional[int]) -> None:
        if num_classes is None or dataset.max_label is None:
            return
        top, where = dataset.max_label
        if top >= num_classes:
            raise ValueError(f'{where}: label {top} does not exist for the model head '
                             f'(num_classes={num_classes}, labels must be in [0, '
                             f'{num_classes})); fix the list or the head num_classes')
        if top + 1 < num_classes:
            runner.logger.warning(f'{dataset.ann_file}: labels go up to {top} but the head has '
                                  f'num_classes={num_classes}; classes {top + 1}..'
                                  f'{num_classes - 1} never appear in this list')

    @staticmethod
    def _check_features(split: str, dataset: TADFeatureDataset, model: nn.Module,
                        num_classes: Optional[int]) -> None:
        channels = input_channels(model)
        for width, path in getattr(dataset, 'feature_widths', {}).items():
            if channels is not None and width != channels:
                raise ValueError(f'{path}: {split} features are {width} wide but the model '
                                 f'takes in_channels={channels}; set the localizer '
                                 'in_channels to the feature width (or extract features with '
                                 'the matching backbone)')
        classes = dataset.metainfo.get('classes') or ()
        if num_classes is not None and len(classes) > num_classes:
            raise ValueError(f'{dataset.ann_file}: {split} annotations have {len(classes)} '
                             f'classes (label_id up to {len(classes) - 1}) but the head has '
                             f'num_classes={num_classes}')


__all__ = ['DatasetModelCheckHook', 'head_num_classes', 'input_channels']

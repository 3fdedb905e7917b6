"""One bad-sample policy for every video dataset: skip-and-count (with a cap) or raise.

A *bad sample* is data that cannot be loaded: a missing, corrupt or too-short video, a missing
frame file. It is told apart from a bug by *which* transform failed: only mmaction2's loading
transforms (:data:`LOADING_TRANSFORMS`, by class, so subclasses count too) turn an exception
into a :class:`BadSampleError`; an exception in any other transform propagates unchanged.

Counting across dataloader workers: each worker process has its own copy of the dataset, so a
per-process counter never reaches the main process. Instead every skip is carried with the next
sample the same worker returns (``data_samples.metainfo['bad_samples_skipped']``, a list of
messages naming the files) and :class:`BadSampleHook` (main process) totals them per epoch and
for the run, logs them at epoch end, publishes them in the ``MessageHub`` and enforces the cap.
This works with any worker start method and needs no shared memory.

mmengine has no such mechanism (``BaseDataset.__getitem__`` silently refetches on ``None``), and
mmaction2's datasets raise decoder tracebacks without the file name, hence this module.
"""
import logging
from typing import Any, Callable, List, Optional, Sequence, Type, Union

from mmaction.datasets.transforms import (DecordDecode, DecordInit, ImageDecode, OpenCVDecode,
                                          OpenCVInit, PIMSDecode, PIMSInit, PyAVDecode, PyAVInit,
                                          RawFrameDecode)
from mmengine.hooks import Hook
from mmengine.logging import MessageHub, print_log
from mmengine.registry import HOOKS

BAD_SAMPLE_POLICIES = ('skip', 'error')

#: Transforms that open or decode files: an exception there means bad data, not a bug.
LOADING_TRANSFORMS = (DecordInit, DecordDecode, PyAVInit, PyAVDecode, OpenCVInit, OpenCVDecode,
                      PIMSInit, PIMSDecode, RawFrameDecode, ImageDecode)

#: metainfo key of a packed sample: messages of the bad samples skipped before it.
SKIPPED_KEY = 'bad_samples_skipped'


class BadSampleError(RuntimeError):
    """A sample's data is missing, unreadable or unusable; the message names the file."""


def check_policy(owner: str, name: str, value: str) -> str:
    """Return ``value`` if it is a valid policy, else raise naming ``owner.name``."""
    if value not in BAD_SAMPLE_POLICIES:
        raise ValueError(f'{owner}.{name} must be one of {BAD_SAMPLE_POLICIES}, got {value!r}')
    return value


class BadSampleLog:
    """Applies a policy to bad samples of one dataset in one process and remembers them.

    Args:
        owner (str): Dataset name used in log lines.
        policy (str): ``'skip'`` (log and count; the caller returns None so mmengine refetches
            another sample in training) or ``'error'`` (raise the error). Defaults to 'skip'.
    """

    def __init__(self, owner: str, policy: str = 'skip') -> None:
        self.owner = owner
        self.policy = check_policy(owner, 'policy', policy)
        self.messages: List[str] = []
        self._pending: List[str] = []

    def __len__(self) -> int:
        return len(self.messages)

    def report(self, err: BadSampleError, carry: bool = True) -> None:
        """Record ``err``; raise it under ``'error'``, log it under ``'skip'``.

        ``carry`` hands a skip to the next returned sample for :class:`BadSampleHook`; False
        for samples dropped when the dataset is built (they are never drawn in an epoch).
        """
        msg = str(err)
        self.messages.append(msg)
        if self.policy == 'error':
            raise err
        if carry:
            self._pending.append(msg)
        print_log(f'{self.owner}: skipping {msg} ({len(self.messages)} skipped so far in this '
                  'process)', logger='current', level=logging.WARNING)

    def attach_pending(self, data: Any) -> Any:
        """Move the skips since the last returned sample into ``data``'s metainfo.

        ``data`` is a packed sample (``dict(inputs, data_samples)``) or a list of them (repeated
        augmentation); the messages go on the first one. Other shapes are returned unchanged
        and the skips stay pending.
        """
        if not self._pending:
            return data
        first = data[0] if isinstance(data, (list, tuple)) and data else data
        sample = first.get('data_samples') if isinstance(first, dict) else None
        if sample is None or not hasattr(sample, 'set_metainfo'):
            return data
        previous = list(sample.metainfo.get(SKIPPED_KEY, []))
        sample.set_metainfo({SKIPPED_KEY: previous + self._pending})
        self._pending = []
        return data


def run_pipeline(transforms: Sequence[Callable], results: dict, where: str,
                 error_cls: Type[BadSampleError] = BadSampleError,
                 after_each: Optional[Callable[[dict], None]] = None) -> Optional[dict]:
    """Apply ``transforms`` to ``results``, turning loading failures into ``error_cls``.

    Args:
        transforms (Sequence[callable]): The pipeline's transforms.
        results (dict): Data info of one sample.
        where (str): File or folder named in the error (video path, frame directory).
        error_cls (type): :class:`BadSampleError` subclass to raise. Defaults to
            BadSampleError.
        after_each (callable, optional): Called with the results after every transform; may
            raise ``error_cls`` (e.g. a length check once ``total_frames`` is known).

    Returns:
        dict | None: The transformed results, or None if a transform returned None.

    Raises:
        error_cls: a :data:`LOADING_TRANSFORMS` member raised; the message names ``where``,
            the transform and the original error. Exceptions of other transforms propagate.
    """
    for transform in transforms:
        try:
            results = transform(results)
        except Exception as e:
            if not isinstance(transform, LOADING_TRANSFORMS):
                raise
            raise error_cls(f'{where}: cannot be loaded by {type(transform).__name__} '
                            f'({type(e).__name__}: {e})') from e
        if results is None:
            return None
        if after_each is not None:
            after_each(results)
    return results


class BadSampleMixin:
    """``__getitem__`` that hands the skips of this worker to the next returned sample.

    The dataset sets ``self.bad_sample_log`` (a :class:`BadSampleLog`) before use and returns
    None from ``prepare_data`` after :meth:`BadSampleLog.report` under ``'skip'``.
    """

    bad_sample_log: BadSampleLog

    def __getitem__(self, idx: int):
        data = super().__getitem__(idx)
        return self.bad_sample_log.attach_pending(data)


def _skipped_in_batch(data_batch: Any) -> List[str]:
    samples = data_batch.get('data_samples', []) if isinstance(data_batch, dict) else []
    out: List[str] = []
    for sample in samples or []:
        meta = getattr(sample, 'metainfo', None)
        if meta:
            out.extend(meta.get(SKIPPED_KEY, []))
    return out


@HOOKS.register_module()
class BadSampleHook(Hook):
    """Totals the bad training samples skipped in every dataloader worker; enforces a cap.

    At each epoch's end it logs ``N bad samples skipped this epoch (M in total)`` with the
    files, and publishes ``bad_samples/epoch`` and ``bad_samples/total`` in the MessageHub
    (``runtime_info``). A run whose skips in one epoch exceed ``max_skipped`` stops with an
    error listing them.

    Args:
        max_skipped (int | float | None): Cap per epoch: an int is a number of samples, a float
            in (0, 1) a fraction of the training set's length; None means no cap.
            Defaults to 0.1 (a tenth of the data unreadable is a broken dataset, not noise).
        max_listed (int): Files named in a log line. Defaults to 20.
    """

    priority = 'LOW'

    def __init__(self, max_skipped: Union[int, float, None] = 0.1, max_listed: int = 20) -> None:
        if max_skipped is not None and not (
                (isinstance(max_skipped, int) and max_skipped >= 0)
                or (isinstance(max_skipped, float) and 0 < max_skipped < 1)):
            raise ValueError('BadSampleHook.max_skipped must be an int >= 0, a float in (0, 1) '
                             f'or None, got {max_skipped!r}')
        self.max_skipped = max_skipped
        self.max_listed = max_listed
        self.epoch_skipped: List[str] = []
        self.total = 0

    def _cap(self, runner) -> Optional[int]:
        if self.max_skipped is None or isinstance(self.max_skipped, int):
            return self.max_skipped
        return int(self.max_skipped * len(runner.train_dataloader.dataset))

    def _listed(self, messages: List[str]) -> str:
        shown = '; '.join(messages[:self.max_listed])
        return shown + (f'; ... {len(messages) - self.max_listed} more'
                        if len(messages) > self.max_listed else '')

    def before_train_epoch(self, runner) -> None:
        self.epoch_skipped = []

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        new = _skipped_in_batch(data_batch)
        if not new:
            return
        self.epoch_skipped.extend(new)
        self.total += len(new)
        cap = self._cap(runner)
        if cap is not None and len(self.epoch_skipped) > cap:
            raise BadSampleError(
                f'{len(self.epoch_skipped)} bad training samples skipped in epoch '
                f'{runner.epoch + 1}, more than max_skipped={self.max_skipped} (= {cap} '
                f'samples); fix or remove these files: '
                f'{self._listed(self.epoch_skipped)}')

    def after_train_epoch(self, runner) -> None:
        hub = MessageHub.get_current_instance()
        hub.update_info('bad_samples/epoch', len(self.epoch_skipped))
        hub.update_info('bad_samples/total', self.total)
        if self.epoch_skipped:
            runner.logger.warning(
                f'{len(self.epoch_skipped)} bad samples skipped in epoch {runner.epoch + 1} '
                f'({self.total} in total, all workers): {self._listed(self.epoch_skipped)}')


__all__ = ['BadSampleError', 'BadSampleLog', 'BadSampleMixin', 'BadSampleHook',
           'BAD_SAMPLE_POLICIES', 'LOADING_TRANSFORMS', 'SKIPPED_KEY', 'check_policy',
           'run_pipeline']

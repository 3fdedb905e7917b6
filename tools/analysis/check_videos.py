"""Dataset doctor: probe every video / frame folder of a list or a folder before training.

    python tools/analysis/check_videos.py LIST_OR_FOLDER [--config CFG] [--split train]
        [--data-prefix DIR] [--clip-len 16 --frame-interval 4] [--workers 2] [--out-dir DIR]

Per file (see :mod:`vmae2_mm.utils.video_probe`): decodable (decord on the first, middle and
last frame, with the reason when not), frames, fps, duration (s), resolution as displayed, codec,
rotation, variable frame rate, and shorter than the clip (``clip_len x frame_interval``).

Input: an mmaction2 list (``path label`` lines of ``VideoDataset``, ``frame_dir total_frames
label`` of ``RawframeDataset``, ``path 0 -1`` / ``frame_dir start total`` pretraining lists; the
first field is the path, or everything before the last field when the first alone does not
exist), with paths relative to ``--data-prefix`` or the config's dataset ``data_prefix``; or a
folder, searched recursively for video files and frame folders (folders holding images).

``--config`` supplies the clip (the ``SampleFrames`` step of the split's pipeline, or
``clip_len``/``frame_interval`` of a pretraining dataset, per source when the list is one of its
``sources``) and the data prefix; ``--clip-len``/``--frame-interval``/``--data-prefix`` override.

Writes to ``--out-dir``: ``report.csv`` and ``report.json`` (one row per file, plus the summary
in the json), and a cleaned list holding only the usable entries: for a list input the same
lines, verbatim, in ``<list stem>_clean<ext>``; for a folder ``clean_list.txt`` with one path
relative to the folder per line. Missing, undecodable, streamless and too-short entries are
left out; VFR and rotated files are kept (decord applies the rotation) and only reported.
Prints a summary with counts per problem and every bad entry with its reason.
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
import time
from collections import Counter
from typing import List, Optional, Tuple

from mmengine.config import Config
from mmengine.utils import track_parallel_progress, track_progress

from vmae2_mm.utils.video_probe import (BAD_PROBLEMS, IMAGE_EXTENSIONS, PROBLEMS,
                                        VIDEO_EXTENSIONS, ProbeResult, probe_task)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Check the videos of a dataset list or folder')
    parser.add_argument('source', help='mmaction2 list file, or a folder of videos / frame '
                        'folders (searched recursively)')
    parser.add_argument('--config', help='config whose dataset gives the clip length and the '
                        'data prefix')
    parser.add_argument('--split', default='train', choices=['train', 'val', 'test'],
                        help='which dataloader of --config to read (default: train)')
    parser.add_argument('--data-prefix', help='folder the list paths are relative to '
                        '(default: the config\'s data_prefix, else the list\'s folder)')
    parser.add_argument('--clip-len', type=int, help='frames per clip (overrides the config)')
    parser.add_argument('--frame-interval', type=int,
                        help='sampling stride (overrides the config)')
    parser.add_argument('--workers', type=int, default=max(1, min(8, os.cpu_count() or 1)),
                        help='parallel probe processes (default: min(8, CPUs))')
    parser.add_argument('--out-dir', default='work_dirs/check_videos',
                        help='where report.csv/report.json and the cleaned list go')
    return parser.parse_args(argv)


def _unwrap(ds: dict) -> dict:
    """The innermost dataset of mmengine wrappers (RepeatDataset, ClassBalancedDataset)."""
    while isinstance(ds.get('dataset'), dict):
        ds = ds['dataset']
    return ds


def clip_from_config(cfg: Config, split: str = 'train',
                     list_file: Optional[str] = None) -> Tuple[Optional[int], Optional[int],
                                                               Optional[str]]:
    """``(clip_len, frame_interval, data_prefix)`` the config's ``{split}_dataloader`` uses.

    A ``SampleFrames`` step of the dataset pipeline gives the clip; a pretraining
    ``UnlabeledHybridDataset`` gives ``clip_len`` and the ``frame_interval``/``data_prefix`` of
    the source whose ``ann_file`` has the name of ``list_file`` (the dataset's defaults
    otherwise). Values the config does not define are None.
    """
    key = f'{split}_dataloader'
    if key not in cfg or not isinstance(cfg[key].get('dataset'), dict):
        raise ValueError(f'{cfg.filename}: no {key}.dataset to read the clip from')
    ds = _unwrap(cfg[key]['dataset'])
    clip_len = frame_interval = prefix = None
    for step in ds.get('pipeline') or []:
        if isinstance(step, dict) and str(step.get('type', '')).split('.')[-1] == 'SampleFrames':
            clip_len = int(step.get('clip_len', 1))
            frame_interval = int(step.get('frame_interval', 1))
            break
    if clip_len is None and 'clip_len' in ds:
        clip_len, frame_interval = int(ds['clip_len']), int(ds.get('frame_interval', 1))
    data_prefix = ds.get('data_prefix')
    if isinstance(data_prefix, dict):
        prefix = data_prefix.get('video') or data_prefix.get('img') or None
    elif isinstance(data_prefix, str):
        prefix = data_prefix or None
    for src in ds.get('sources') or []:
        if list_file and osp.basename(src.get('ann_file', '')) == osp.basename(list_file):
            frame_interval = int(src.get('frame_interval', frame_interval or 1))
            prefix = src.get('data_prefix') or prefix
    return clip_len, frame_interval, prefix


def read_list(list_file: str, data_prefix: str) -> List[Tuple[str, str]]:
    """``[(absolute path, line)]`` of a list file; blank lines are skipped."""
    entries = []
    with open(list_file, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip('\n')
            parts = line.split()
            if not parts:
                continue
            path = osp.join(data_prefix, parts[0])
            if not osp.exists(path) and len(parts) > 1:
                # paths with spaces: everything before the last field
                spaced = osp.join(data_prefix, line.rsplit(None, 1)[0].strip())
                if osp.exists(spaced):
                    path = spaced
            entries.append((path, line))
    if not entries:
        raise ValueError(f'{list_file}: the list holds no entry')
    return entries


def scan_folder(folder: str) -> List[Tuple[str, str]]:
    """``[(absolute path, path relative to folder)]`` of the video files and frame folders
    (folders with image files) under ``folder``, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in filenames):
            found.append(dirpath)
        found.extend(osp.join(dirpath, f) for f in sorted(filenames)
                     if f.lower().endswith(VIDEO_EXTENSIONS))
    if not found:
        raise ValueError(f'{folder}: no video files ({", ".join(VIDEO_EXTENSIONS)}) or frame '
                         'folders found')
    return [(p, osp.relpath(p, folder)) for p in sorted(found)]


def summarize(results: List[ProbeResult]) -> dict:
    counts = Counter(p for r in results for p in r.problems)
    return dict(
        total=len(results), ok=sum(r.ok for r in results),
        bad=sum(not r.ok for r in results),
        videos=sum(r.kind == 'video' for r in results),
        frame_folders=sum(r.kind == 'frames' for r in results),
        problems={p: counts[p] for p in PROBLEMS if counts[p]})


def write_reports(results: List[ProbeResult], summary: dict, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'report.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=ProbeResult.columns())
        writer.writeheader()
        for r in results:
            row = r.to_dict()
            row['problems'] = ';'.join(row['problems'])
            writer.writerow(row)
    with open(osp.join(out_dir, 'report.json'), 'w') as f:
        json.dump(dict(summary=summary, files=[r.to_dict() for r in results]), f, indent=1)


def print_summary(summary: dict, results: List[ProbeResult], seconds: float, workers: int,
                  clean_path: str, file=sys.stdout) -> None:
    p = lambda *a: print(*a, file=file)  # noqa: E731
    p(f"checked {summary['total']} entries ({summary['videos']} videos, "
      f"{summary['frame_folders']} frame folders) in {seconds:.1f} s with {workers} worker(s)")
    p(f"usable: {summary['ok']}   bad (left out of the cleaned list): {summary['bad']}")
    for code, n in summary['problems'].items():
        kind = 'bad' if code in BAD_PROBLEMS else 'kept'
        p(f'  {code:22s} {n:6d}  ({kind}) {PROBLEMS[code]}')
    for r in results:
        if not r.ok:
            p(f'  BAD {r.reason}')
    p(f'cleaned list: {clean_path}')


def check_videos(source: str, out_dir: str, min_frames: Optional[int] = None,
                 data_prefix: Optional[str] = None, workers: int = 1,
                 file=sys.stdout) -> dict:
    """Probe every entry of a list file or folder, write the reports and the cleaned list.

    Args:
        source (str): List file or folder.
        out_dir (str): Output folder.
        min_frames (int, optional): Frames a clip needs; None skips the length check.
        data_prefix (str, optional): Folder list paths are relative to. Defaults to the list's
            folder.
        workers (int): Processes (1 probes in this process).

    Returns:
        dict: ``summary`` (counts), ``results`` (list of :class:`ProbeResult`), ``clean_list``
        (path of the cleaned list).
    """
    is_folder = osp.isdir(source)
    if not is_folder and not osp.isfile(source):
        raise FileNotFoundError(f'{source}: neither a list file nor a folder')
    if is_folder:
        entries = scan_folder(source)
    else:
        entries = read_list(source, osp.dirname(source) if data_prefix is None else data_prefix)
    tasks = [(path, min_frames) for path, _ in entries]
    start = time.perf_counter()
    if workers > 1 and len(tasks) > 1:
        results = track_parallel_progress(probe_task, tasks, nproc=workers, file=file)
    else:
        results = track_progress(probe_task, tasks, file=file)
    seconds = time.perf_counter() - start
    print(file=file)
    summary = summarize(results)
    write_reports(results, summary, out_dir)
    if is_folder:
        clean_path = osp.join(out_dir, 'clean_list.txt')
    else:
        stem, ext = osp.splitext(osp.basename(source))
        clean_path = osp.join(out_dir, f'{stem}_clean{ext or ".txt"}')
    with open(clean_path, 'w', encoding='utf-8') as f:
        for (_, line), r in zip(entries, results):
            if r.ok:
                f.write(line + '\n')
    print_summary(summary, results, seconds, workers, clean_path, file=file)
    return dict(summary=summary, results=results, clean_list=clean_path)


def main(argv=None) -> dict:
    args = parse_args(argv)
    clip_len = frame_interval = prefix = None
    if args.config:
        clip_len, frame_interval, prefix = clip_from_config(
            Config.fromfile(args.config), args.split,
            None if osp.isdir(args.source) else args.source)
    clip_len = args.clip_len or clip_len
    frame_interval = args.frame_interval or frame_interval or 1
    min_frames = clip_len * frame_interval if clip_len else None
    prefix = args.data_prefix if args.data_prefix is not None else prefix
    if min_frames:
        print(f'clip: {clip_len} x {frame_interval} = {min_frames} frames needed')
    return check_videos(args.source, args.out_dir, min_frames, prefix, args.workers)


if __name__ == '__main__':
    main()

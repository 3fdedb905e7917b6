"""Build Kinetics-710 (the paper's LabeledHybrid) video lists from Kinetics annotation CSVs.

    python tools/data/build_k710.py --k400 k400/train.csv k400/validate.csv \
        --k600 k600/train.csv k600/validate.csv --k700 k700/train.csv k700/validate.csv \
        --out data/k710 [--aliases renames.json] [--path-template TEMPLATE]

Writes ``kinetics710_{train,val}_list_videos.txt`` (mmaction2 ``path label`` lists, the names
``configs/_base_/datasets/recognition_kinetics710.py`` reads), ``label_map_k710.txt``,
``label_710to{400,600,700}.json`` (merged index of every class of a version, in that version's
sorted class order) and ``k710_stats.json``. Without an alias table for renamed classes the
class count is what name normalisation yields; the released 710-class list (and its order)
cannot be derived from the CSVs alone.

The paper (appendix C.1, following UniFormerV2) merges the training and validation sets of the
three versions, removes duplicate videos by YouTube id, deletes validation videos that occur in
training, and groups classes whose names differ between versions, giving 710 classes.

Rules implemented here (documented, deterministic):

* class names are normalised: surrounding quotes/spaces stripped, lower case, ``_`` -> space,
  runs of spaces collapsed; then an optional alias table (``{name: merged name}``, normalised
  the same way) maps renamed classes onto one name. No alias table is built in: the exact
  renames behind the released 710-class list are not reproduced here, so with the real CSVs
  the class count is what normalisation (plus any aliases you pass) yields;
* the merged classes are all (aliased) class names of all versions, sorted alphabetically;
  the label index is the position in that list;
* versions are read newest first (K700, K600, K400); a YouTube id keeps its first (newest)
  annotation, so a clip listed by several versions appears once; conflicting labels for the
  same id are counted in the statistics;
* a validation clip whose YouTube id is in the merged training set is dropped;
* rows of other splits (``test``) and rows without a label are ignored.

The official CSV layout is ``label,youtube_id,time_start,time_end,split`` (+ ``is_cc`` in
some releases); ``split`` is ``train``, ``val``/``validate`` or ``test``.
"""
import argparse
import csv
import json
import os
import os.path as osp
import re
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Sequence

VERSIONS = ('k700', 'k600', 'k400')  # newest first: the first annotation of an id wins
REQUIRED_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end', 'split')
SPLIT_ALIASES = {'train': 'train', 'training': 'train', 'val': 'val', 'validate': 'val',
                 'validation': 'val', 'valid': 'val', 'test': 'test', 'testing': 'test'}
DEFAULT_PATH_TEMPLATE = '{version}/{split}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4'


def normalize_class_name(name: str) -> str:
    """``' Passing_American  Football '`` -> ``'passing american football'``."""
    name = name.strip().strip('"\'').replace('_', ' ').lower()
    return re.sub(r'\s+', ' ', name).strip()


def read_kinetics_csv(path: str, version: str) -> List[dict]:
    """Rows of one Kinetics annotation CSV as dicts (``version`` and a canonical ``split``).

    Raises:
        ValueError: naming the file (and line) for missing columns or bad values.
    """
    rows = []
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ValueError(f'{path}: missing columns {missing}; expected the Kinetics layout '
                             f'{",".join(REQUIRED_COLUMNS)}[,is_cc], got {header}')
        for lineno, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or '').strip() for k, v in raw.items() if k is not None}
            split = SPLIT_ALIASES.get(row['split'].lower())
            if split is None:
                raise ValueError(f'{path}:{lineno}: unknown split {row["split"]!r}; expected one '
                                 f'of {sorted(set(SPLIT_ALIASES))}')
            try:
                start, end = int(float(row['time_start'])), int(float(row['time_end']))
            except ValueError:
                raise ValueError(f'{path}:{lineno}: time_start/time_end must be numbers, got '
                                 f'{row["time_start"]!r}, {row["time_end"]!r}') from None
            if not row['youtube_id']:
                raise ValueError(f'{path}:{lineno}: empty youtube_id')
            rows.append(dict(version=version, split=split, label=row['label'],
                             youtube_id=row['youtube_id'], time_start=start, time_end=end))
    return rows


def build_k710(annotations: Dict[str, Sequence[str]],
               aliases: Optional[Dict[str, str]] = None) -> dict:
    """Merge Kinetics versions into one labelled dataset.

    Args:
        annotations (dict): version (``'k400'``, ``'k600'``, ``'k700'``) -> CSV paths.
        aliases (dict, optional): class name -> merged class name (both normalised here).

    Returns:
        dict: ``classes`` (sorted names), ``train`` / ``val`` (row dicts with ``label_index``
        and ``class_name``), ``version_classes`` (version -> sorted normalised names) and
        ``stats`` (counts of rows read, duplicates, label conflicts, val clips dropped).
    """
    unknown = set(annotations) - set(VERSIONS)
    if unknown:
        raise ValueError(f'unknown Kinetics versions {sorted(unknown)}; expected {VERSIONS}')
    aliases = {normalize_class_name(k): normalize_class_name(v)
               for k, v in (aliases or {}).items()}
    stats = Counter()
    version_classes = {}
    merged = {'train': OrderedDict(), 'val': OrderedDict()}
    for version in VERSIONS:
        names = set()
        for path in annotations.get(version, ()):
            for row in read_kinetics_csv(path, version):
                stats[f'{version}_{row["split"]}_rows'] += 1
                if row['split'] == 'test' or not row['label']:
                    continue
                name = normalize_class_name(row['label'])
                names.add(name)
                row['class_name'] = aliases.get(name, name)
                seen = merged[row['split']].get(row['youtube_id'])
                if seen is None:
                    merged[row['split']][row['youtube_id']] = row
                    continue
                stats[f'duplicate_{row["split"]}'] += 1
                if seen['class_name'] != row['class_name']:
                    stats['label_conflicts'] += 1
        if version in annotations:
            version_classes[version] = sorted(names)
    val = OrderedDict()
    for yid, row in merged['val'].items():
        if yid in merged['train']:
            stats['val_dropped_in_train'] += 1
        else:
            val[yid] = row
    # every class of every version, even one whose clips were all deduplicated away, so that
    # each version's label map is complete
    classes = sorted({aliases.get(n, n) for names in version_classes.values() for n in names})
    index = {name: i for i, name in enumerate(classes)}
    out = dict(classes=classes, version_classes=version_classes, stats=dict(stats))
    for split, rows in (('train', merged['train']), ('val', val)):
        out[split] = [dict(r, label_index=index[r['class_name']]) for r in rows.values()]
    out['stats'].update(num_classes=len(classes), num_train=len(out['train']),
                        num_val=len(out['val']))
    return out


def version_label_map(result: dict, version: str, aliases: Optional[Dict[str, str]] = None
                      ) -> List[int]:
    """For each class of ``version`` (its sorted normalised names) the merged label index,
    like the official ``label_710to400.json`` (used to read K400 scores off a K710 head)."""
    aliases = {normalize_class_name(k): normalize_class_name(v)
               for k, v in (aliases or {}).items()}
    index = {name: i for i, name in enumerate(result['classes'])}
    return [index[aliases.get(n, n)] for n in result['version_classes'][version]]


def write_k710(result: dict, out_dir: str, path_template: str = DEFAULT_PATH_TEMPLATE,
               aliases: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Write mmaction2 video lists (``path label``), the class list and per-version maps.

    File names follow ``configs/_base_/datasets/recognition_kinetics710.py``:
    ``kinetics710_{train,val}_list_videos.txt``, ``label_map_k710.txt`` (one class per line),
    ``label_710to{400,600,700}.json`` and ``k710_stats.json``.

    ``path_template`` fields: ``version``, ``split``, ``youtube_id``, ``time_start``,
    ``time_end``, ``label`` (original name) and ``label_dir`` (original name, spaces -> ``_``).

    Returns:
        dict: kind -> written file path.
    """
    os.makedirs(out_dir, exist_ok=True)
    files = {}
    for split in ('train', 'val'):
        lines = []
        for r in result[split]:
            fields = dict(r, label_dir=r['label'].replace(' ', '_'))
            lines.append(f'{path_template.format(**fields)} {r["label_index"]}')
        files[split] = osp.join(out_dir, f'kinetics710_{split}_list_videos.txt')
        with open(files[split], 'w') as f:
            f.write('\n'.join(lines) + ('\n' if lines else ''))
    files['classes'] = osp.join(out_dir, 'label_map_k710.txt')
    with open(files['classes'], 'w') as f:
        f.write('\n'.join(result['classes']) + '\n')
    for version in result['version_classes']:
        files[f'map_{version}'] = osp.join(out_dir, f'label_710to{version[1:]}.json')
        with open(files[f'map_{version}'], 'w') as f:
            json.dump(version_label_map(result, version, aliases), f)
    files['stats'] = osp.join(out_dir, 'k710_stats.json')
    with open(files['stats'], 'w') as f:
        json.dump(result['stats'], f, indent=1, sort_keys=True)
    return files


__all__ = ['normalize_class_name', 'read_kinetics_csv', 'build_k710', 'version_label_map',
           'write_k710', 'DEFAULT_PATH_TEMPLATE']

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for version in ('k400', 'k600', 'k700'):
        parser.add_argument(f'--{version}', nargs='+', default=[], metavar='CSV',
                            help=f'{version.upper()} annotation CSVs (train/validate[/test])')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--aliases', help='JSON file {class name: merged class name}')
    parser.add_argument('--path-template', default=DEFAULT_PATH_TEMPLATE,
                        help='video path per row; fields: version, split, youtube_id, '
                        'time_start, time_end, label, label_dir (default: %(default)s)')
    args = parser.parse_args(argv)
    if not (args.k400 or args.k600 or args.k700):
        parser.error('give at least one of --k400/--k600/--k700')
    return args


def main(argv=None):
    args = parse_args(argv)
    aliases = None
    if args.aliases:
        with open(args.aliases) as f:
            aliases = json.load(f)
        if not isinstance(aliases, dict):
            raise ValueError(f'{args.aliases}: expected a JSON object {{name: merged name}}')
    annotations = {v: getattr(args, v) for v in ('k400', 'k600', 'k700') if getattr(args, v)}
    result = build_k710(annotations, aliases)
    files = write_k710(result, args.out, args.path_template, aliases)
    stats = result['stats']
    print(f"K710: {stats['num_classes']} classes, {stats['num_train']} train / "
          f"{stats['num_val']} val clips ({stats.get('val_dropped_in_train', 0)} val clips "
          f"dropped as in train); wrote {', '.join(sorted(files.values()))}")
    return files


if __name__ == '__main__':
    main()

"""Build Kinetics-710 (the paper's LabeledHybrid) video lists from Kinetics annotation CSVs.

    python tools/build_k710.py --k400 k400/train.csv k400/validate.csv \
        --k600 k600/train.csv k600/validate.csv --k700 k700/train.csv k700/validate.csv \
        --out data/k710 [--aliases renames.json] [--path-template TEMPLATE]

Writes ``kinetics710_{train,val}_list_videos.txt`` (mmaction2 ``path label`` lists, the names
``configs/_base_/datasets/recognition_kinetics710.py`` reads), ``label_map_k710.txt``,
``label_710to{400,600,700}.json`` (merged index of every class of a
version, in that version's sorted class order) and ``k710_stats.json``. The merge rules are in
``vmae2_mm/datasets/k710.py``. Without an alias table for renamed classes the class count is
what name normalisation yields; the released 710-class list (and its order) cannot be derived
from the CSVs alone.
"""
import argparse
import json

from vmae2_mm.datasets.k710 import DEFAULT_PATH_TEMPLATE, build_k710, write_k710


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

"""Generate the K710 -> K400/K600/K700 head index maps from class-list files.

Usage::

    python tools/make_label_maps.py [--source k710] [--targets k400 k600 k700] \
        [--aliases ALIASES.json] [--out-dir vmae2_mm/data]

Each class list has one name per line in class-index order (``k400`` etc. name the lists shipped
in ``vmae2_mm/data``). Every target name must appear in the source list, verbatim or through
``--aliases`` (a JSON object target name -> source name). Writes ``label_710to{N}.json``: a JSON
list whose i-th entry is the K710 row of the i-th target class, formatted as the official
VideoMAE V2 ``misc/label_710to*.json`` (run with the defaults, it regenerates the shipped maps
byte-for-byte).
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from vmae2_mm.checkpoint.label_maps import (DATA_DIR, build_label_map,  # noqa: E402
                                            read_class_list, write_label_map)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--source', default='k710', help='source class list (file or k710)')
    parser.add_argument('--targets', nargs='+', default=['k400', 'k600', 'k700'],
                        help='target class lists (files or k400/k600/k700)')
    parser.add_argument('--aliases', help='JSON object: target class name -> source class name')
    parser.add_argument('--out-dir', default=DATA_DIR, help='output folder')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    source = read_class_list(args.source)
    aliases = None
    if args.aliases:
        with open(args.aliases, encoding='utf-8') as f:
            aliases = json.load(f)
        if not isinstance(aliases, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()):
            raise ValueError(f'{args.aliases}: --aliases must be a JSON object mapping target '
                             f'class names to source class names')
    os.makedirs(args.out_dir, exist_ok=True)
    for target in args.targets:
        names = read_class_list(target)
        mapping = build_label_map(source, names, aliases)
        stem = osp.splitext(osp.basename(target))[0].replace('label_map_', '')
        num = ''.join(ch for ch in stem if ch.isdigit()) or stem
        out = osp.join(args.out_dir, f'label_{len(source)}to{num}.json')
        write_label_map(mapping, out)
        print(f'{out}: {len(mapping)} classes')


if __name__ == '__main__':
    main()

"""Synthetic data kit: small generated datasets in the real file formats.

    python tools/make_synthetic_data.py recognition --out data/motion [--num-classes 4 ...]
    python tools/make_synthetic_data.py ava --out data/mini_ava ...
    python tools/make_synthetic_data.py thumos --out data/mini_thumos ...
    python tools/make_synthetic_data.py pretrain --out data/ramps ...

Each task lives in ``vmae2_mm/testing/<task>.py`` with ``add_arguments`` and ``run``.
"""
import argparse
import importlib

TASKS = {
    'recognition': 'motion clips (mp4) + mmaction2 video lists; label = direction of motion',
    'ava': 'mini-AVA: frames at 30 fps, AVA CSVs, label-map pbtxt, excluded timestamps, proposals',
    'thumos': 'mini-THUMOS: untrimmed mp4s + ActionFormer-style JSON annotations',
    'pretrain': 'drifting colour ramps (mp4) + path label lists for the pre-training check',
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='task', required=True)
    for task, help_text in TASKS.items():
        p = sub.add_parser(task, help=help_text)
        p.add_argument('--out', required=True, help='output directory')
        try:
            module = importlib.import_module(f'vmae2_mm.testing.{task}')
        except ModuleNotFoundError:
            continue
        module.add_arguments(p)
    args = parser.parse_args(argv)
    module = importlib.import_module(f'vmae2_mm.testing.{args.task}')
    return module.run(args)


if __name__ == '__main__':
    main()

"""The README demo: generate small datasets, train and test the models, print the results.

    python tools/run_demo.py [--work-dir work_dirs/demo] [--stages recognition,...]

Each stage generates its data in the real file formats, trains through ``tools/train.py``
and tests through ``tools/test.py`` exactly as a user would, and prints its headline metric.
"""
import argparse
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run(args, log_file):
    """Run ``python ARGS`` from the repository root, teeing the output into ``log_file``."""
    with open(log_file, 'w') as log:
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT, text=True)
    text = open(log_file).read()
    if proc.returncode != 0:
        sys.stderr.write(text[-5000:])
        raise SystemExit(f'demo step failed: python {" ".join(args)} (log: {log_file})')
    return text


def last_metric(text, key):
    found = re.findall(rf'{re.escape(key)}: ([0-9.]+)', text)
    return float(found[-1]) if found else float('nan')


def stage_recognition(work_dir):
    """Motion clips -> tiny VideoMAE V2 ViT from scratch -> multi-view test top-1."""
    data = osp.join(work_dir, 'data', 'motion-32px')
    cfg = osp.join(ROOT, 'configs/recognition/videomaev2/'
                   'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py')
    paths = [f'{split}_dataloader.dataset.{key}={value}' for split in ('train', 'val', 'test')
             for key, value in (('ann_file', osp.join(data, 'val.txt' if split != 'train'
                                                     else 'train.txt')),
                                ('data_prefix.video', data))]
    if not osp.exists(osp.join(data, 'train.txt')):
        run(['tools/make_synthetic_data.py', 'recognition', '--out', data, '--size', '32',
             '--num-frames', '32', '--speed', '1', '--train-per-class', '48',
             '--val-per-class', '16'], osp.join(work_dir, 'recognition_data.log'))
    train_dir = osp.join(work_dir, 'recognition')
    run(['tools/train.py', cfg, '--work-dir', train_dir, '--seed', '0', '--cfg-options', *paths],
        osp.join(work_dir, 'recognition_train.log'))
    text = run(['tools/test.py', cfg, osp.join(train_dir, 'epoch_20.pth'), '--work-dir',
                osp.join(work_dir, 'recognition_test'), '--cfg-options', *paths],
               osp.join(work_dir, 'recognition_test.log'))
    top1 = last_metric(text, 'acc/top1')
    return f'recognition: tiny ViT on generated motion clips, held-out top-1 = {top1:.4f} ' \
           f'(4 classes, chance 0.25)'


def stage_pretrain(work_dir):
    """Drifting-ramp clips -> tiny dual-mask pre-training -> fine-tuning from its encoder."""
    import glob
    import json
    data = osp.join(work_dir, 'data', 'ramps')
    cfg_dir = osp.join(ROOT, 'configs/pretrain/videomaev2')
    pt_cfg = osp.join(cfg_dir, 'vit-tiny-p16_videomaev2-tube90-cell50_1xb8-8x2x1-25e_'
                      'synthetic-ramps.py')
    ft_cfg = osp.join(cfg_dir, 'vit-tiny-p16_videomaev2-ramps-pre_1xb8-8x2x1-10e_synthetic-ramps.py')
    if not osp.exists(osp.join(data, 'train.txt')):
        run(['tools/make_synthetic_data.py', 'pretrain', '--out', data],
            osp.join(work_dir, 'pretrain_data.log'))
    pt_dir = osp.join(work_dir, 'pretrain')
    epochs = 12
    run(['tools/train.py', pt_cfg, '--work-dir', pt_dir, '--seed', '0', '--cfg-options',
         f'train_dataloader.dataset.sources.0.ann_file={data}/train.txt',
         f'train_dataloader.dataset.sources.0.data_prefix={data}',
         f'train_cfg.max_epochs={epochs}', f'param_scheduler.1.T_max={epochs - 1}',
         f'param_scheduler.1.end={epochs}'], osp.join(work_dir, 'pretrain_train.log'))
    scalars = sorted(glob.glob(osp.join(pt_dir, '*', 'vis_data', 'scalars.json')))[-1]
    with open(scalars) as f:
        losses = [json.loads(ln)['loss'] for ln in f if '"loss"' in ln]
    paths = [f'{split}_dataloader.dataset.{key}={value}' for split in ('train', 'val', 'test')
             for key, value in (('ann_file', osp.join(data, 'val.txt' if split != 'train'
                                                     else 'train.txt')),
                                ('data_prefix.video', data))]
    ft_dir = osp.join(work_dir, 'finetune')
    ckpt = osp.join(pt_dir, f'epoch_{epochs}.pth')
    run(['tools/train.py', ft_cfg, '--work-dir', ft_dir, '--seed', '0', '--cfg-options',
         f'model.backbone.init_cfg.checkpoint={ckpt}', *paths],
        osp.join(work_dir, 'finetune_train.log'))
    last = sorted(glob.glob(osp.join(ft_dir, 'epoch_*.pth')),
                  key=lambda p: int(re.findall(r'epoch_(\d+)', p)[0]))[-1]
    text = run(['tools/test.py', ft_cfg, last, '--work-dir', osp.join(work_dir, 'finetune_test'),
                '--cfg-options', *paths], osp.join(work_dir, 'finetune_test.log'))
    return (f'pretrain -> fine-tune: dual-mask reconstruction loss {losses[0]:.3f} -> '
            f'{losses[-1]:.3f} in {epochs} epochs; fine-tuned from {osp.basename(ckpt)}, '
            f'held-out top-1 = {last_metric(text, "acc/top1"):.4f}')


STAGES = {'recognition': stage_recognition, 'pretrain': stage_pretrain}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--stages', default=','.join(STAGES),
                        help=f'comma-separated subset of {list(STAGES)}')
    args = parser.parse_args(argv)
    stages = [s for s in args.stages.split(',') if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f'unknown stages {sorted(unknown)}; choose from {list(STAGES)}')
    import os
    os.makedirs(args.work_dir, exist_ok=True)
    results = []
    for name in stages:
        start = time.time()
        print(f'[demo] {name} ...', flush=True)
        summary = STAGES[name](args.work_dir)
        results.append(f'{summary}  [{time.time() - start:.0f} s]')
        print(f'[demo] {results[-1]}', flush=True)
    print('\n'.join(['', '== vmae2_mm demo results =='] + results))


if __name__ == '__main__':
    main()

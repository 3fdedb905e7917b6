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


def load_tool(relative_path):
    """Import a helper script under ``tools/`` by its path (tools are not a package)."""
    import importlib.util
    path = osp.join(ROOT, 'tools', relative_path)
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def stage_tad(work_dir):
    """Mini-THUMOS videos -> clip features (tools/extract_features.py) -> ActionFormer ->
    average mAP over tIoU 0.3:0.1:0.7."""
    import torch

    from vmae2_mm.models.backbones import VideoMAEv2ViT
    data = osp.join(work_dir, 'data', 'mini_thumos')
    ann = osp.join(data, 'annotations', 'mini_thumos14.json')
    feats = osp.join(data, 'features')
    if not osp.exists(ann):
        run(['tools/make_synthetic_data.py', 'thumos', '--out', data, '--size', '32',
             '--num-val', '24', '--num-test', '8'], osp.join(work_dir, 'tad_data.log'))
    # extractor: a tiny ViT (random weights, seed 0) saved in the official fine-tuned layout;
    # any VideoMAE V2 checkpoint + config of configs/localization/feature_extraction/ works the same way
    vit = dict(arch=dict(embed_dims=64, depth=2, num_heads=2, mlp_ratio=2.0), img_size=32,
               num_frames=16, pos_embed_grid_from=None)
    ext_cfg, ckpt = osp.join(work_dir, 'tad_extract_cfg.py'), osp.join(work_dir, 'tad_vit.pth')
    with open(ext_cfg, 'w') as f:
        f.write(f'model = {dict(type="VideoMAEv2ViT", **vit)!r}\n'
                'feature_extraction = dict(stride=4, batch_size=16)\n')
    torch.manual_seed(0)
    torch.save(dict(model=VideoMAEv2ViT(**vit).state_dict()), ckpt)
    run(['tools/extract_features.py', ext_cfg, ckpt, '--videos', osp.join(data, 'videos'),
         '--out', feats, '--no-progress'], osp.join(work_dir, 'tad_extract.log'))
    # channel statistics of the training subset, read by the recipe's StandardizeTADFeatures
    run(['tools/data/tad_feature_stats.py', feats, ann, '--subset', 'Validation'],
        osp.join(work_dir, 'tad_stats.log'))
    cfg = osp.join(ROOT, 'configs/localization/actionformer_tiny_1xb2-5+35e_mini-thumos.py')
    paths = [f'{split}_dataloader.dataset.data_root={data}' for split in ('train', 'val', 'test')]
    paths += [f'{split}_evaluator.ann_file={ann}' for split in ('val', 'test')]
    train_dir = osp.join(work_dir, 'tad')
    run(['tools/train.py', cfg, '--work-dir', train_dir, '--cfg-options', *paths],
        osp.join(work_dir, 'tad_train.log'))
    text = run(['tools/test.py', cfg, osp.join(train_dir, 'epoch_40.pth'), '--work-dir',
                osp.join(work_dir, 'tad_test'), '--cfg-options', *paths],
               osp.join(work_dir, 'tad_test.log'))
    avg = last_metric(text, 'mAP/avg')
    # the same localizer on one raw test video: segments in seconds with names and scores
    import json
    database = json.load(open(ann))['database']
    vid = sorted(v for v, e in database.items() if e['subset'] == 'Test')[0]
    table = run(['tools/infer_localizer.py', osp.join(data, 'videos', f'{vid}.mp4'), cfg,
                 osp.join(train_dir, 'epoch_40.pth'), '--extractor-config', ext_cfg,
                 '--extractor-checkpoint', ckpt, '--feat-stats',
                 osp.join(feats, 'channel_stats.npz'), '--label-file',
                 osp.join(data, 'classes.txt'), '--out-dir', osp.join(work_dir, 'tad_infer'),
                 '--min-score', '0.3', '--no-progress'], osp.join(work_dir, 'tad_infer.log'))
    rows = [ln for ln in table.splitlines() if ln.startswith(vid)]
    truth = '; '.join(f'{a["label"]} {a["segment"][0]:.1f}-{a["segment"][1]:.1f} s'
                      for a in database[vid]['annotations'])
    return (f'TAD: mini-THUMOS -> tiny-ViT clip features -> tiny ActionFormer, test average '
            f'mAP (tIoU 0.3:0.1:0.7) = {avg:.1f}% (4 classes)\n'
            f'  tools/infer_localizer.py on the raw video {vid}.mp4 (planted: {truth}):\n    '
            + '\n    '.join(rows[:8]))


def stage_ava(work_dir):
    """Mini-AVA (frames, CSVs, proposals) -> tiny VideoMAE V2 FastRCNN -> frame-mAP@0.5,
    next to the mAP of random scores on the same proposals."""
    import json

    from mmengine.registry import init_default_scope

    random_score_map = load_tool('analysis/ava_random_baseline.py').random_score_map
    data = osp.join(work_dir, 'data', 'mini_ava')
    ann = osp.join(data, 'annotations')
    if not osp.exists(osp.join(data, 'meta.json')):
        run(['tools/make_synthetic_data.py', 'ava', '--out', data, '--num-train-videos', '30',
             '--num-val-videos', '8', '--seconds', '6', '--height', '96', '--width', '128',
             '--seed', '1'], osp.join(work_dir, 'ava_data.log'))
    cfg = osp.join(ROOT, 'configs/detection/videomaev2/'
                   'vit-tiny-p8_scratch_1xb8-8x4x1-30e_mini-ava-rgb.py')
    files = dict(label_file=osp.join(ann, 'ava_action_list_v2.2_for_activitynet_2019.pbtxt'))
    for split in ('train', 'val'):
        files[split] = dict(
            ann_file=osp.join(ann, f'ava_{split}_v2.2.csv'),
            exclude_file=osp.join(ann, f'ava_{split}_excluded_timestamps_v2.2.csv'),
            proposal_file=osp.join(ann, f'ava_dense_proposals_{split}.FAIR.recall_93.9.pkl'))
    paths = []
    for loader, split in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        prefix = f'{loader}_dataloader.dataset'
        paths += [f'{prefix}.{k}={v}' for k, v in files[split].items()]
        paths += [f'{prefix}.label_file={files["label_file"]}',
                  f'{prefix}.data_prefix.img={osp.join(data, "rawframes")}']
    for evaluator in ('val_evaluator', 'test_evaluator'):
        paths += [f'{evaluator}.ann_file={files["val"]["ann_file"]}',
                  f'{evaluator}.exclude_file={files["val"]["exclude_file"]}',
                  f'{evaluator}.label_file={files["label_file"]}']
    train_dir = osp.join(work_dir, 'ava')
    run(['tools/train.py', cfg, '--work-dir', train_dir, '--no-validate', '--cfg-options',
         *paths], osp.join(work_dir, 'ava_train.log'))
    text = run(['tools/test.py', cfg, osp.join(train_dir, 'epoch_30.pth'), '--work-dir',
                osp.join(work_dir, 'ava_test'), '--cfg-options', *paths],
               osp.join(work_dir, 'ava_test.log'))
    with open(osp.join(data, 'meta.json')) as f:
        meta = json.load(f)
    init_default_scope('mmaction')
    chance = random_score_map(files['val']['ann_file'], files['val']['exclude_file'],
                              files['label_file'], files['val']['proposal_file'],
                              meta['timestamp_start'], meta['timestamp_end'])
    return (f'AVA: mini-AVA -> tiny VideoMAE V2 FastRCNN, frame-mAP@0.5 = '
            f'{last_metric(text, "mAP/overall"):.4f} (random scores on the same proposals: '
            f'{chance:.4f}; 4 actions)')


STAGES = {'recognition': stage_recognition, 'pretrain': stage_pretrain, 'tad': stage_tad,
          'ava': stage_ava}


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

"""What a VideoMAE V2 pretrainer reconstructs, for one clip of a video, as a PNG grid.

    python tools/visualize_reconstruction.py CONFIG VIDEO [--checkpoint CKPT] \
        [--out-dir DIR] [--start 0.0] [--seed 0] [--scale 2] [--mp4] [--device cpu]

CONFIG is a pre-training config (configs/pretrain/...): its encoder size, clip sampling and
mask transforms are used. CKPT: an official, HF or vmae2_mm pre-training checkpoint (random
weights without one). Writes DIR/<video>_recon.png (rows: input, encoder-visible cubes,
decoder targets, reconstruction; one column per tubelet), DIR/<video>_recon.json (mask
counts, reconstruction loss) and with --mp4 DIR/<video>_recon.mp4 (the four stages side by
side, every frame).
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from vmae2_mm.apis.inference_reconstruction import (  # noqa: E402
    init_pretrainer, reconstruct_clip, render_grid)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('video')
    parser.add_argument('--checkpoint', help='pre-training checkpoint (random weights if none)')
    parser.add_argument('--out-dir', default='work_dirs/reconstruction')
    parser.add_argument('--start', type=float, default=0.0, help='clip start, seconds')
    parser.add_argument('--seed', type=int, default=0, help='seed of the encoder mask')
    parser.add_argument('--scale', type=int, default=2, help='integer upscaling of the PNG')
    parser.add_argument('--mp4', action='store_true', help='also write the stages as an mp4')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None):
    import cv2
    import numpy as np
    args = parse_args(argv)
    model, cfg = init_pretrainer(args.config, args.checkpoint, args.device)
    res = reconstruct_clip(model, cfg, args.video, args.start, args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(args.video))[0]
    png = osp.join(args.out_dir, f'{stem}_recon.png')
    grid = render_grid(res, scale=args.scale)
    if not cv2.imwrite(png, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f'{png}: cannot write the PNG')
    info = dict(video=args.video, config=args.config, checkpoint=args.checkpoint,
                token_grid=list(res['grid']), tokens=int(res['enc_hidden'].size),
                encoder_visible=int((~res['enc_hidden']).sum()),
                decoder_kept=int(res['dec_kept'].sum()),
                loss_tokens=int(res['loss_mask'].sum()), recon_loss=res['recon_loss'], png=png)
    if args.mp4:
        from vmae2_mm.apis.inference_reconstruction import _masked
        p, tub = res['patch_size'], res['tubelet_size']
        stages = [res['frames'], _masked(res['frames'], ~res['enc_hidden'], p, tub),
                  _masked(res['frames'], res['loss_mask'], p, tub), res['recon']]
        side = np.concatenate(stages, axis=2)  # [T, S, 4S, 3]
        mp4 = osp.join(args.out_dir, f'{stem}_recon.mp4')
        w = cv2.VideoWriter(mp4, cv2.VideoWriter_fourcc(*'mp4v'), 8.0,
                            (side.shape[2], side.shape[1]))
        for f in side:
            w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        w.release()
        info['mp4'] = mp4
    with open(osp.join(args.out_dir, f'{stem}_recon.json'), 'w') as f:
        json.dump(info, f, indent=1)
    print(f'{png}: {info["encoder_visible"]}/{info["tokens"]} cubes visible to the encoder, '
          f'{info["loss_tokens"]} reconstructed in the loss, loss {info["recon_loss"]:.4f}')
    return info


if __name__ == '__main__':
    main()

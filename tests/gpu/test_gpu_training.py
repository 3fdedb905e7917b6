"""CUDA paths of training: ViT-B recognizer steps in fp32 / fp16 (AmpOptimWrapper, dynamic loss
scale) / bf16, GPU-vs-CPU fp32 eval parity, the SDPA backend actually used in mixed precision,
the dual-masking pre-training loss on GPU vs CPU, and ``tools/dist_train.sh`` with NCCL and FSDP
in a 1-GPU world."""
import os
import socket
import sys

import pytest
import torch

from tests.conftest import REPO_ROOT, run_python
from tests.gpu.conftest import need

pytestmark = pytest.mark.gpu

FRAMES, SIZE = 16, 224


def _recognizer(num_classes=10):
    from mmaction.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/_base_/models/videomaev2_vit_base.py'))
    cfg.model.backbone.drop_path_rate = 0.
    cfg.model.cls_head.num_classes = num_classes
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _clips(batch, num_classes=10, seed=0):
    from mmaction.structures import ActionDataSample
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (1, 3, FRAMES, SIZE, SIZE), generator=g, dtype=torch.uint8)
              for _ in range(batch)]
    samples = [ActionDataSample().set_gt_label(i % num_classes) for i in range(batch)]
    return dict(inputs=inputs, data_samples=samples)


def _optim_wrapper(model, precision):
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    if precision == 'fp32':
        return OptimWrapper(opt)
    return AmpOptimWrapper(optimizer=opt, loss_scale='dynamic',
                           dtype='float16' if precision == 'fp16' else 'bfloat16')


@pytest.mark.parametrize('precision', ['fp32', 'fp16', 'bf16'])
def test_recognizer_vit_b_train_steps_finite(precision):
    model = _recognizer().cuda().train()
    wrapper = _optim_wrapper(model, precision)
    data = _clips(2)
    losses = []
    for step in range(3):
        with wrapper.optim_context(model):
            batch = model.data_preprocessor(data, True)
            loss, _ = model.parse_losses(model(**batch, mode='loss'))
        wrapper.backward(loss)
        if precision == 'fp16':
            # the grads are scaled: unscale before looking at them, as step() would
            wrapper.loss_scaler.unscale_(wrapper.optimizer)
            assert wrapper.loss_scaler.get_scale() > 0
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert len(grads) == sum(p.requires_grad for p in model.parameters())
        bad = [n for n, p in model.named_parameters()
               if p.grad is not None and not torch.isfinite(p.grad).all()]
        assert not bad, f'{precision} step {step}: non-finite gradients in {bad[:5]}'
        wrapper.step()
        wrapper.zero_grad()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))), losses
    print(f'{precision}: losses {losses}')


def test_recognizer_eval_logits_gpu_equal_cpu_fp32():
    model = _recognizer().eval()
    x = torch.randn(2, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feat_cpu = model.backbone(x)
        logits_cpu = model.cls_head(feat_cpu)
        model.cuda()
        feat_gpu = model.backbone(x.cuda()).cpu()
        logits_gpu = model.cls_head(feat_gpu.cuda()).cpu()
    diff_feat = (feat_gpu - feat_cpu).abs().max().item()
    diff_logits = (logits_gpu - logits_cpu).abs().max().item()
    print(f'GPU vs CPU fp32: features max |diff| {diff_feat:.2e}, logits {diff_logits:.2e}')
    assert diff_feat <= 1e-4 and diff_logits <= 1e-4, (diff_feat, diff_logits)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_sdpa_runs_flash_or_efficient_kernel_in_mixed_precision_training(dtype):
    """The backbone built with the default ``attn_impl='auto'`` runs SDPA on CUDA, and in
    bf16/fp16 training SDPA dispatches to the flash or memory-efficient kernel: checked twice,
    by restricting SDPA to those two backends (the math fallback would raise) and by the
    profiler's ATen op names."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.profiler import ProfilerActivity, profile

    from vmae2_mm.models.backbones import VideoMAEv2ViT
    vit = VideoMAEv2ViT(arch='base', img_size=SIZE, num_frames=FRAMES).cuda().train()
    # 'auto' may resolve to a CPU backend (by the host CPU); on CUDA tensors every backend but
    # 'manual' calls SDPA, which the profiler below checks
    assert {b.attn.attn_impl for b in vit.blocks} <= {'sdpa', 'onednn', 'cpu_fused'}
    x = torch.randn(2, 3, FRAMES, SIZE, SIZE, device='cuda')
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]), \
            profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof, \
            torch.autocast('cuda', dtype=dtype):
        vit(x).float().sum().backward()
    names = {e.key for e in prof.key_averages()}
    fused = {n for n in names if n in ('aten::_scaled_dot_product_flash_attention',
                                       'aten::_scaled_dot_product_efficient_attention',
                                       'aten::_scaled_dot_product_cudnn_attention')
             or n.startswith('aten::_flash_attention') or n.startswith('aten::_efficient_att')}
    math = {n for n in names if 'math' in n.lower() and 'scaled_dot_product' in n}
    print(f'{dtype}: SDPA ops {sorted(fused)}')
    assert fused and not math, sorted(n for n in names if 'attention' in n)
    assert any(torch.isfinite(p.grad).all() for p in vit.parameters() if p.grad is not None)


def _pretrainer_batch(model, batch=2, seed=0):
    from mmaction.structures import ActionDataSample
    from vmae2_mm.datasets.transforms.masking import RunningCellMasking, TubeMasking
    p = model.encoder.patch_size
    grid = (FRAMES // 2, SIZE // p, SIZE // p)
    tube, cell = TubeMasking(grid, 0.9, seed=seed), RunningCellMasking(grid, 0.5, seed=seed + 1)
    samples = []
    for _ in range(batch):
        r = cell(tube({}))
        ds = ActionDataSample()
        ds.set_field(r['enc_hidden'], 'enc_hidden')
        ds.set_field(r['dec_kept'], 'dec_kept')
        samples.append(ds)
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (1, 3, FRAMES, SIZE, SIZE), generator=g, dtype=torch.uint8)
              for _ in range(batch)]
    return dict(inputs=inputs, data_samples=samples)


def test_dual_mask_pretrainer_loss_gpu_equal_cpu():
    """Same weights, input and masks: GPU fp32 loss within 1e-5 of the CPU fp32 loss; GPU bf16
    autocast within 2% (bf16 keeps 8 mantissa bits; the loss is a mean over ~1e6 squared
    errors, so rounding averages out well below that); the GPU backward gives finite grads."""
    from vmae2_mm.models.pretrainers import VideoMAEv2Pretrainer
    torch.manual_seed(0)
    model = VideoMAEv2Pretrainer(encoder=dict(arch='base', img_size=SIZE, num_frames=FRAMES),
                                 decoder=dict()).train()
    data = _pretrainer_batch(model)
    with torch.no_grad():
        cpu = float(model(**model.data_preprocessor(data, True), mode='loss')['loss'])
    model.cuda()
    batch = model.data_preprocessor(data, True)
    gpu = model(**batch, mode='loss')['loss']
    gpu.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad(), torch.autocast('cuda', dtype=torch.bfloat16):
        bf16 = float(model(**batch, mode='loss')['loss'])
    print(f'pretrain loss CPU fp32 {cpu:.7f}, GPU fp32 {float(gpu):.7f}, GPU bf16 {bf16:.5f}')
    assert abs(float(gpu) - cpu) <= 1e-5, (float(gpu), cpu)
    assert abs(bf16 - cpu) <= 0.02 * abs(cpu), (bf16, cpu)


# ---------------------------------------------------------------- launchers (1 GPU world)
TINY = REPO_ROOT / ('configs/recognition/videomaev2/'
                    'vit-tiny-p8_scratch_1xb16-8x2x1-20e_synthetic-motion-32px.py')
DIST_CONFIG = '''
_base_ = [{bases}]
d = {data!r}
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(ann_file=d + '/train.txt', data_prefix=dict(video=d)))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = dict(dataset=dict(ann_file=d + '/val.txt', data_prefix=dict(video=d)))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=100)
param_scheduler = []
default_hooks = dict(checkpoint=dict(interval=1, save_best=None), logger=dict(interval=1))
{extra}
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def motion16(tmp_path_factory):
    need('decord', 'the recognition pipeline decodes mp4 with decord')
    from vmae2_mm.testing.recognition import generate_motion_dataset
    out = tmp_path_factory.mktemp('motion_gpu')
    generate_motion_dataset(str(out), num_classes=4, train_per_class=4, val_per_class=1,
                            num_frames=32, size=32, seed=3)
    return out


@pytest.mark.parametrize('strategy', ['ddp', 'fsdp'])
def test_dist_train_one_gpu_nccl_trains_and_saves(motion16, tmp_path, strategy):
    bases = [str(TINY)]
    extra = ''
    if strategy == 'fsdp':
        bases.append(str(REPO_ROOT / 'configs/_base_/strategies/fsdp_bf16.py'))
        extra = "optim_wrapper = dict(type='FSDPOptimWrapper')"
    cfg = tmp_path / f'{strategy}.py'
    cfg.write_text(DIST_CONFIG.format(bases=', '.join(map(repr, bases)), data=str(motion16),
                                      extra=extra))
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()))
    import subprocess
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools/dist_train.sh'), str(cfg), '1',
                           '--work-dir', str(work)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert (work / 'epoch_1.pth').is_file(), sorted(p.name for p in work.iterdir())
    # the run's environment record: dist_cfg {'backend': 'nccl'} ('gloo' on CUDA-less hosts)
    run_log = '\n'.join(p.read_text() for p in work.glob('*/*.log'))
    assert "{'backend': 'nccl'}" in run_log + log, (run_log or log)[-3000:]
    assert "{'backend': 'gloo'}" not in run_log + log
    if strategy == 'fsdp':
        assert 'FlexibleRunner' in log or 'GroupedFSDPStrategy' in log, log[-3000:]
    ckpt = torch.load(work / 'epoch_1.pth', map_location='cpu', weights_only=False)
    state = ckpt.get('state_dict', ckpt.get('model', ckpt))
    assert any(k.startswith('backbone.') for k in state), list(state)[:5]
    assert all(torch.isfinite(v).all() for v in state.values() if torch.is_tensor(v)
               and v.is_floating_point())

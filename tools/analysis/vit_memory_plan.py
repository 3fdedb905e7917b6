"""Memory/throughput plan for VideoMAE V2 pre-training (ViT-S..g): states, activations, clips/GPU.

    python tools/analysis/vit_memory_plan.py [--arch giant] [--gpus 8 64] [--gpu-mem-gb 80]
        [--frames 16] [--size 224] [--policy cuda_bf16] [--mfu 0.4] [--peak-tflops 312]

Prints markdown tables (see ``docs/vit_g_memory_plan.md`` for the reasoning):

1. parameters (encoder, decoder) and model/optimizer state per GPU for DDP, ZeRO-2, ZeRO-3 and
   FSDP full sharding over N GPUs (AdamW: fp32 master weights + two fp32 moments);
2. activation bytes per clip (encoder, decoder, loss) for encoder-only vs dual masking, with and
   without per-block activation checkpointing, and the dual / encoder-only ratio next to the
   paper's Table 2 (1753 MB -> 1050 MB, 0.60x);
3. the largest number of clips per 80 GB GPU for every (sharding, masking, checkpointing) case;
4. forward MACs per clip in the paper's convention (Table 2: 263.93G / 241.61G for ViT-g) and a
   throughput estimate at an assumed model-FLOP utilisation.

Activation model (``saved_activation_bytes``): the bytes autograd keeps between forward and
backward, i.e. the tensors saved for backward, counted once per storage, for the pretrainer as
written in ``vmae2_mm.models.pretrainers`` (pre-norm blocks, fused ``qkv``, SDPA or explicit
softmax attention, exact GELU, bf16 autocast). Per block of ``n`` tokens, width ``C``, ``h``
heads, MLP width ``H`` and activation element size ``a`` (2 under bf16 autocast):

* LayerNorm 1 and 2: input (``ln_in`` bytes/element: ``a`` when LN runs in bf16 as CPU autocast
  does, 4 when CUDA autocast runs it in fp32 on an fp32 copy) + mean and rstd (2 x 4 B/token)
* ``qkv`` and ``fc1`` inputs (the LN outputs in bf16): 2 x ``a*C``
* attention, SDPA (flash kernels): q, k, v (views of the ``qkv`` output, ``3*a*C``), the output
  (``a*C``; its [B, N, heads, d] layout makes the head merge a view that ``proj`` saves) and the
  logsumexp (4 B per head and token)
* attention, explicit softmax (the official code, batch > 1): ``q*scale`` (``a*C``), k and v
  (batched-matmul copies, ``2*a*C``), the softmax output (``softmax`` bytes/element on h x n x n:
  ``a`` on CPU, 4 + 2 on CUDA, fp32 softmax then a bf16 copy for ``attn @ v``) and the merged
  heads (a copy, ``a*C``)
* MLP: ``fc1`` output (GELU input) and GELU output (``fc2`` input): 2 x ``a*H``

Outside the blocks: the visible cubes' embedding input, the encoder's final LN, the
``encoder_to_decoder`` input, the decoder's final LN (whose input is a slice of the last block's
output, so on CPU the whole [L, Dd] storage stays alive), the head input and the fp32 loss
difference. With activation checkpointing each block keeps only its input (``a*n*C``); backward
recomputes one block at a time, so the peak adds one block's full saved bytes
(``recompute_peak``). Dropout and drop path are 0 (pre-training); gradient buffers during
backward and allocator fragmentation are covered by the usable-memory fraction.
``tests/unit/tools/test_vit_memory_plan.py`` checks these formulas against the bytes measured
with ``torch.autograd.graph.saved_tensors_hooks`` on the real pretrainer.
"""
import argparse
import math
from dataclasses import dataclass
from typing import Dict, Optional, Union

#: per-element byte sizes of the precision policies (see the module docstring)
POLICIES = {
    # CPU autocast, bf16: LayerNorm and softmax run in bf16 (measured by the unit test)
    'cpu_bf16': dict(act=2, ln_in=2, softmax=2, dec_norm_full=True),
    # no autocast
    'fp32': dict(act=4, ln_in=4, softmax=4, dec_norm_full=True),
    # CUDA autocast, bf16/fp16: layer_norm and softmax are on autocast's fp32 list, so LN saves
    # an fp32 copy of its input, softmax saves its fp32 output and attn @ v a half copy; the
    # decoder's final LN copies only the kept slice to fp32
    'cuda_bf16': dict(act=2, ln_in=4, softmax=6, dec_norm_full=False),
}

#: paper Table 2 (ViT-g, UnlabeledHybrid): forward FLOPs (G) and memory per clip (MB)
PAPER_TABLE2 = {'encoder-only': dict(gflops=263.93, mem_mb=1753, time_h=356),
                'dual': dict(gflops=241.61, mem_mb=1050, time_h=241)}
MB = 1e6
GB = 1e9


@dataclass
class Dims:
    """Encoder/decoder sizes of a pretrainer (names as in ``vmae2_mm``)."""
    embed_dims: int
    depth: int
    num_heads: int
    mlp_hidden_dims: int
    patch_size: int
    tubelet_size: int
    dec_embed_dims: int
    dec_depth: int
    dec_num_heads: int
    dec_mlp_hidden_dims: int

    @property
    def out_dims(self) -> int:
        return 3 * self.tubelet_size * self.patch_size**2

    @classmethod
    def from_arch(cls, arch: Union[str, dict], decoder: Optional[dict] = None,
                  tubelet_size: int = 2) -> 'Dims':
        """Sizes from the same settings the model uses (``resolve_arch``, ``decoder_settings``)."""
        from vmae2_mm.models.backbones.vit_videomaev2 import resolve_arch
        from vmae2_mm.models.pretrainers.decoder import decoder_settings
        enc = resolve_arch(arch)
        dec = decoder_settings(arch, enc['embed_dims'], enc['mlp_hidden_dims'], decoder)
        return cls(enc['embed_dims'], enc['depth'], enc['num_heads'], enc['mlp_hidden_dims'],
                   enc['patch_size'], tubelet_size, dec['embed_dims'], dec['depth'],
                   dec['num_heads'], dec['mlp_hidden_dims'])


@dataclass
class Tokens:
    """Token counts of one clip: all, encoder-visible, decoder-reconstructed, decoder input."""
    total: int
    visible: int
    kept: int

    @property
    def decoder_len(self) -> int:
        return self.visible + self.kept


def token_counts(dims: Dims, frames: int = 16, size: int = 224, tube_ratio: float = 0.9,
                 dual: bool = True, cell_ratio: float = 0.5) -> Tokens:
    """Tube masking hides ``int(ratio*H'*W')`` tokens per slice; the running cell drops
    ``int(4*ratio)`` of every 2x2 unit; without it the decoder reconstructs all hidden tokens.
    Giant at 16x224^2: 2048 tokens, 208 visible, 1024 kept (dual) or 1840 (encoder-only)."""
    t, hw = frames // dims.tubelet_size, (size // dims.patch_size)**2
    n = t * hw
    visible = t * (hw - int(tube_ratio * hw))
    kept = n * (4 - int(4 * cell_ratio)) // 4 if dual else n - visible
    return Tokens(n, visible, kept)


def block_saved_bytes(n: int, c: int, heads: int, hidden: int, attn: str = 'sdpa',
                      policy: str = 'cuda_bf16') -> int:
    """Bytes one pre-norm block saves for backward per clip of ``n`` tokens (see module doc)."""
    p = POLICIES[policy]
    a = p['act']
    ln = 2 * (p['ln_in'] * c + 8)            # two LayerNorms: input + mean/rstd (fp32)
    lin_in = 2 * a * c                       # qkv and fc1 inputs (LN outputs)
    mlp = 2 * a * hidden                     # fc1 output (GELU input), GELU output
    if attn == 'sdpa':
        att = 3 * a * c + a * c + 4 * heads  # q, k, v views; output; logsumexp
        return n * (ln + lin_in + att + mlp)
    if attn == 'manual':
        att = a * c + 2 * a * c + a * c      # q*scale; k, v copies; merged heads (copy)
        return n * (ln + lin_in + att + mlp) + p['softmax'] * heads * n * n
    raise ValueError(f"attn must be 'sdpa' or 'manual', got {attn!r}")


def saved_activation_bytes(dims: Dims, tokens: Tokens, attn: str = 'sdpa',
                           policy: str = 'cuda_bf16', with_cp: bool = False) -> Dict[str, int]:
    """Saved-for-backward bytes of one clip, by part. ``recompute_peak`` is the extra live
    memory while backward recomputes one checkpointed block (0 without checkpointing)."""
    p = POLICIES[policy]
    a = p['act']
    c, dd = dims.embed_dims, dims.dec_embed_dims
    nv, nk, nl = tokens.visible, tokens.kept, tokens.decoder_len
    enc_blk = block_saved_bytes(nv, c, dims.num_heads, dims.mlp_hidden_dims, attn, policy)
    dec_blk = block_saved_bytes(nl, dd, dims.dec_num_heads, dims.dec_mlp_hidden_dims, attn,
                                policy)
    if with_cp:  # each checkpointed block keeps only its input
        enc_blocks, dec_blocks = dims.depth * a * nv * c, dims.dec_depth * a * nl * dd
    else:
        enc_blocks, dec_blocks = dims.depth * enc_blk, dims.dec_depth * dec_blk
    cube = dims.out_dims  # 3 * tubelet * p * p pixels per cube
    enc_other = (a * nv * cube                   # embedding input: visible cubes (half copy)
                 + nv * (p['ln_in'] * c + 8)     # final LN input + stats
                 + a * nv * c)                   # encoder_to_decoder input (LN output)
    dec_norm_in = a * nl * dd if p['dec_norm_full'] else p['ln_in'] * nk * dd
    dec_other = dec_norm_in + 8 * nk + a * nk * dd   # final LN, head input
    loss = 4 * nk * cube + 4 * nk                    # fp32 (pred - target), loss weights
    out = dict(encoder_blocks=enc_blocks, encoder_other=enc_other, decoder_blocks=dec_blocks,
               decoder_other=dec_other, loss=loss)
    out['total'] = sum(out.values())
    out['recompute_peak'] = max(enc_blk, dec_blk) if with_cp else 0
    return out


def param_counts(dims: Dims) -> Dict[str, int]:
    """Parameters of encoder (cube embedding, blocks, final norm), decoder (blocks, norm, head)
    and the bridge (``encoder_to_decoder``, ``mask_token``)."""
    def block(c, h):  # LN x2, qkv (no bias) + q/v bias, proj, fc1, fc2
        return 4 * c + 3 * c * c + 2 * c + c * c + c + 2 * c * h + h + c

    c, dd = dims.embed_dims, dims.dec_embed_dims
    enc = (dims.out_dims * c + c + dims.depth * block(c, dims.mlp_hidden_dims) + 2 * c)
    dec = (dims.dec_depth * block(dd, dims.dec_mlp_hidden_dims) + 2 * dd
           + dd * dims.out_dims + dims.out_dims)
    bridge = c * dd + dd
    return dict(encoder=enc, decoder=dec, bridge=bridge, total=enc + dec + bridge,
                block=block(c, dims.mlp_hidden_dims))


def state_bytes(params: int, strategy: str, gpus: int, block_params: int = 0) -> Dict[str, float]:
    """Model + optimizer state bytes per GPU, AdamW with fp32 master weights and moments.

    * ``ddp``: torch AMP: fp32 weights (4P), fp32 grads (4P), moments (8P), and autocast's bf16
      weight copies (2P) held through forward.
    * ``zero2``: DeepSpeed bf16: bf16 weights (2P) on every GPU; bf16 grads, fp32 master and
      moments sharded ((2 + 12) P / N).
    * ``zero3``: everything sharded (16P / N) plus the gathered bf16 weights of the layer being
      run and the prefetched one (2 x 2 x block).
    * ``fsdp``: torch FSDP FULL_SHARD, bf16 param/reduce dtype: fp32 weight, grad and moments
      shards (16P / N) plus the unsharded bf16 weights and grads of the current and prefetched
      unit (one block per unit: 2 x (2 + 2) x block).
    """
    p, n = params, gpus
    if strategy == 'ddp':
        return dict(weights=4 * p + 2 * p, grads=4 * p, optimizer=8 * p)
    if strategy == 'zero2':
        return dict(weights=2 * p, grads=2 * p / n, optimizer=12 * p / n)
    if strategy == 'zero3':
        return dict(weights=2 * p / n + 2 * 2 * block_params, grads=2 * p / n,
                    optimizer=12 * p / n)
    if strategy == 'fsdp':
        return dict(weights=4 * p / n + 2 * 2 * block_params,
                    grads=4 * p / n + 2 * 2 * block_params, optimizer=8 * p / n)
    raise ValueError(f"strategy must be one of ddp, zero2, zero3, fsdp; got {strategy!r}")


STRATEGIES = ('ddp', 'zero2', 'zero3', 'fsdp')


def forward_macs(dims: Dims, tokens: Tokens) -> Dict[str, float]:
    """Forward multiply-accumulates per clip in the paper's Table 2 convention (cube embedding of
    all tokens, blocks with attention n^2 terms, decoder head on the kept tokens; norms and
    softmax ignored)."""
    def blk(n, c, h):
        return n * (4 * c * c + 2 * c * h) + 2 * n * n * c

    enc = tokens.total * dims.out_dims * dims.embed_dims + dims.depth * blk(
        tokens.visible, dims.embed_dims, dims.mlp_hidden_dims)
    dec = (tokens.visible * dims.embed_dims * dims.dec_embed_dims
           + dims.dec_depth * blk(tokens.decoder_len, dims.dec_embed_dims,
                                  dims.dec_mlp_hidden_dims)
           + tokens.kept * dims.dec_embed_dims * dims.out_dims)
    return dict(encoder=enc, decoder=dec, total=enc + dec)


def max_clips(state: float, per_clip: float, gpu_mem_gb: float, usable: float,
              reserve_gb: float) -> int:
    """Largest clip count with ``state + clips * per_clip`` within ``usable * gpu_mem_gb -
    reserve_gb``."""
    budget = gpu_mem_gb * GB * usable - reserve_gb * GB - state
    return max(0, int(budget // per_clip))


def clip_input_bytes(frames: int, size: int, tokens: Tokens, dims: Dims) -> int:
    """Live per-clip tensors that are not saved activations: the fp32 normalised clip and the
    fp32 pixel targets of the kept tokens."""
    return 4 * 3 * frames * size * size + 4 * tokens.kept * dims.out_dims


def build_plan(arch='giant', frames=16, size=224, gpus=(8, 64), gpu_mem_gb=80., usable=0.9,
               reserve_gb=2., attn='sdpa', policy='cuda_bf16', mfu=0.4, peak_tflops=312.,
               decoder=None) -> dict:
    """Every figure of the printed tables, as a dict (used by ``main`` and the docs)."""
    dims = Dims.from_arch(arch, decoder)
    params = param_counts(dims)
    plan = dict(arch=arch, dims=dims, params=params, frames=frames, size=size, policy=policy,
                attn=attn, masking={}, states={}, clips={})
    for masking in ('encoder-only', 'dual'):
        tok = token_counts(dims, frames, size, dual=masking == 'dual')
        acts = {cp: saved_activation_bytes(dims, tok, attn, policy, cp) for cp in (False, True)}
        manual = saved_activation_bytes(dims, tok, 'manual', policy, False)
        plan['masking'][masking] = dict(tokens=tok, acts=acts, manual=manual,
                                        inputs=clip_input_bytes(frames, size, tok, dims),
                                        macs=forward_macs(dims, tok))
    for n in gpus:
        for strat in STRATEGIES:
            st = state_bytes(params['total'], strat, n, params['block'])
            plan['states'][(strat, n)] = st
            for masking, m in plan['masking'].items():
                for cp in (False, True):
                    a = m['acts'][cp]
                    # backward recomputes one block for the whole batch: per clip
                    per_clip = a['total'] + a['recompute_peak'] + m['inputs']
                    plan['clips'][(strat, n, masking, cp)] = max_clips(
                        sum(st.values()), per_clip, gpu_mem_gb, usable, reserve_gb)
    plan.update(gpu_mem_gb=gpu_mem_gb, usable=usable, reserve_gb=reserve_gb, mfu=mfu,
                peak_tflops=peak_tflops, gpus=tuple(gpus))
    return plan


def format_plan(plan: dict) -> str:
    """Markdown tables of ``build_plan``'s figures."""
    d, prm = plan['dims'], plan['params']
    lines = [f"### ViT-{plan['arch']} pre-training, {plan['frames']}x{plan['size']}^2, "
             f"policy `{plan['policy']}`, attention `{plan['attn']}`", '',
             f"Encoder {d.embed_dims}/{d.depth}/{d.num_heads} heads/MLP {d.mlp_hidden_dims}, "
             f"patch {d.patch_size}; decoder {d.dec_embed_dims}/{d.dec_depth}/"
             f"{d.dec_num_heads} heads/MLP {d.dec_mlp_hidden_dims}. Parameters: encoder "
             f"{prm['encoder'] / 1e6:.2f}M, decoder {prm['decoder'] / 1e6:.2f}M, bridge "
             f"{prm['bridge'] / 1e6:.2f}M, total {prm['total'] / 1e6:.2f}M.", '',
             '| state per GPU (GB) | ' + ' | '.join(f'{s} N={n}' for n in plan['gpus']
                                                   for s in STRATEGIES) + ' |',
             '|---|' + '---:|' * (len(plan['gpus']) * len(STRATEGIES))]
    for part in ('weights', 'grads', 'optimizer'):
        lines.append(f'| {part} | ' + ' | '.join(
            f"{plan['states'][(s, n)][part] / GB:.2f}" for n in plan['gpus']
            for s in STRATEGIES) + ' |')
    lines.append('| **total** | ' + ' | '.join(
        f"**{sum(plan['states'][(s, n)].values()) / GB:.2f}**" for n in plan['gpus']
        for s in STRATEGIES) + ' |')
    lines += ['', '| activations per clip (MB) | tokens vis/kept/dec-len | encoder | decoder '
              '| loss | total | total, checkpointed (+recompute peak) | explicit softmax '
              '(official) |', '|---|---|---:|---:|---:|---:|---:|---:|']
    for masking, m in plan['masking'].items():
        a, c, t = m['acts'][False], m['acts'][True], m['tokens']
        lines.append(
            f"| {masking} | {t.visible}/{t.kept}/{t.decoder_len} | "
            f"{(a['encoder_blocks'] + a['encoder_other']) / MB:.0f} | "
            f"{(a['decoder_blocks'] + a['decoder_other']) / MB:.0f} | {a['loss'] / MB:.0f} | "
            f"{a['total'] / MB:.0f} | {c['total'] / MB:.0f} (+{c['recompute_peak'] / MB:.0f}) | "
            f"{m['manual']['total'] / MB:.0f} |")
    e, du = plan['masking']['encoder-only'], plan['masking']['dual']
    pe, pd = PAPER_TABLE2['encoder-only'], PAPER_TABLE2['dual']
    ratio = {k: du['acts'][k]['total'] / e['acts'][k]['total'] for k in (False, True)}
    lines += ['', f"| dual / encoder-only | ours, `{plan['attn']}` | ours, `{plan['attn']}` "
              'checkpointed | ours, explicit softmax (official code) | paper Table 2 |',
              '|---|---:|---:|---:|---:|',
              f'| activation memory per clip | {ratio[False]:.2f} | {ratio[True]:.2f} | '
              f"{du['manual']['total'] / e['manual']['total']:.2f} | "
              f"{pd['mem_mb'] / pe['mem_mb']:.2f} ({pe['mem_mb']} -> {pd['mem_mb']} MB) |",
              f"| forward GMACs per clip | {e['macs']['total'] / 1e9:.2f} -> "
              f"{du['macs']['total'] / 1e9:.2f} ({du['macs']['total'] / e['macs']['total']:.2f})"
              f" | | | {pe['gflops']} -> {pd['gflops']} "
              f"({pd['gflops'] / pe['gflops']:.2f}) |"]
    lines += ['', f"| max clips per {plan['gpu_mem_gb']:.0f} GB GPU (usable "
              f"{plan['usable']:.0%} - {plan['reserve_gb']:.0f} GB) | "
              + ' | '.join(f'{s} N={n}' for n in plan['gpus'] for s in STRATEGIES) + ' |',
              '|---|' + '---:|' * (len(plan['gpus']) * len(STRATEGIES))]
    for masking in plan['masking']:
        for cp in (False, True):
            lines.append(f"| {masking}{', checkpointed' if cp else ''} | " + ' | '.join(
                str(plan['clips'][(s, n, masking, cp)]) for n in plan['gpus']
                for s in STRATEGIES) + ' |')
    lines += ['', f"| throughput at {plan['mfu']:.0%} MFU of {plan['peak_tflops']:.0f} "
              'TFLOP/s | train FLOP per clip (T) | clips/s/GPU | clips/s/GPU, checkpointed |',
              '|---|---:|---:|---:|']
    for masking, m in plan['masking'].items():
        fl = 2 * 3 * m['macs']['total']  # forward + backward = 3 forwards; 2 FLOP per MAC
        rate = plan['mfu'] * plan['peak_tflops'] * 1e12
        lines.append(f'| {masking} | {fl / 1e12:.2f} | {rate / fl:.1f} | '
                     f'{rate / (fl * 4 / 3):.1f} |')
    return '\n'.join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='giant')
    parser.add_argument('--frames', type=int, default=16)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--gpus', type=int, nargs='+', default=[8, 64])
    parser.add_argument('--gpu-mem-gb', type=float, default=80.)
    parser.add_argument('--usable', type=float, default=0.9,
                        help='fraction of GPU memory usable (fragmentation, temporaries)')
    parser.add_argument('--reserve-gb', type=float, default=2., help='CUDA context, workspaces')
    parser.add_argument('--attn', choices=['sdpa', 'manual'], default='sdpa')
    parser.add_argument('--policy', choices=sorted(POLICIES), default='cuda_bf16')
    parser.add_argument('--mfu', type=float, default=0.4)
    parser.add_argument('--peak-tflops', type=float, default=312., help='A100 bf16 dense')
    args = parser.parse_args(argv)
    if not 0 < args.usable <= 1:
        parser.error(f'--usable must be in (0, 1], got {args.usable}')
    plan = build_plan(args.arch, args.frames, args.size, args.gpus, args.gpu_mem_gb, args.usable,
                      args.reserve_gb, args.attn, args.policy, args.mfu, args.peak_tflops)
    print(format_plan(plan))
    return plan


if __name__ == '__main__':
    main()

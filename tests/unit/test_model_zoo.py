"""Model zoo files (``configs/**/README.md`` + ``metafile.yml``): every metafile parses in
mmaction2's format, every config named there exists and builds, every config linked from a README
exists, and every released checkpoint listed with its head size loads strictly into its config's
model in the layout it was published in (official or mmaction2), through the loading path of
``tools/test.py CONFIG CKPT`` (the ``ForeignCheckpointHook`` + mmengine ``load_checkpoint``,
strict). Backbones are built at depth 1 with the real width, patch and head, so the released
files' tensor shapes are what is checked."""
import copy
import re
from pathlib import Path

import pytest
import torch
import yaml
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint

import vmae2_mm  # noqa: F401  (registration)
from vmae2_mm.checkpoint.foreign import AUTO_LABEL_MAPS, install_foreign_checkpoint_hook
from vmae2_mm.checkpoint.label_maps import load_label_map
from vmae2_mm.models.backbones.vit_videomaev2 import ARCH_SETTINGS
from vmae2_mm.models.pretrainers.decoder import DECODER_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
METAFILES = sorted(ROOT.glob('configs/**/metafile.yml'))
READMES = sorted(ROOT.glob('configs/**/README.md'))
MODEL_KEYS = {'Name', 'Config', 'In Collection', 'Metadata', 'Results'}
METADATA_KEYS = {'Architecture', 'Pretrained', 'Training Data', 'Frame', 'Resolution'}
LAYOUTS = ('official', 'mmaction2', 'official-pretrain')


def _load(path):
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def _all_models():
    out = []
    for path in METAFILES:
        for model in (_load(path) or {}).get('Models') or []:
            out.append((path, model))
    return out


MODELS_LISTED = _all_models()
CONFIGS = sorted({m['Config'] for _, m in MODELS_LISTED if isinstance(m, dict) and 'Config' in m})
RELEASED = [(p, m) for p, m in MODELS_LISTED
            if isinstance(m, dict) and 'Checkpoint Classes' in (m.get('Metadata') or {})]
PRETRAINED = [(p, m) for p, m in MODELS_LISTED if isinstance(m, dict) and
              (m.get('Metadata') or {}).get('Checkpoint Layout') == 'official-pretrain']


def test_every_task_has_a_model_zoo():
    folders = {p.parent.relative_to(ROOT).as_posix() for p in METAFILES}
    assert {'configs/recognition/videomaev2', 'configs/detection/videomaev2',
            'configs/pretrain/videomaev2', 'configs/localization'} <= folders, folders
    assert folders <= {p.parent.relative_to(ROOT).as_posix() for p in READMES}


@pytest.mark.parametrize('path', METAFILES, ids=lambda p: p.parent.relative_to(ROOT).as_posix())
def test_metafile_format(path):
    meta = _load(path)
    assert set(meta) == {'Collections', 'Models'}, f'{path}: top-level keys {sorted(meta)}'
    collections = {}
    for c in meta['Collections']:
        assert {'Name', 'README', 'Paper'} <= set(c), f'{path}: collection {c}'
        assert (ROOT / c['README']).is_file(), f"{path}: README {c['README']} missing"
        assert c['Paper']['URL'].startswith('https://') and c['Paper']['Title']
        collections[c['Name']] = c
    assert meta['Models'], f'{path}: no models'
    for m in meta['Models']:
        name = m.get('Name')
        assert MODEL_KEYS <= set(m), f'{path}: model {name} lacks {MODEL_KEYS - set(m)}'
        assert m['In Collection'] in collections, f'{path}: {name}: unknown collection'
        assert METADATA_KEYS <= set(m['Metadata']), \
            f"{path}: {name}: Metadata lacks {METADATA_KEYS - set(m['Metadata'])}"
        assert isinstance(m['Metadata']['Frame'], int)
        assert re.fullmatch(r'\d+x\d+|short-side \d+', m['Metadata']['Resolution']), name
        if 'Views' in m['Metadata']:
            assert re.fullmatch(r'\d+x\d+', m['Metadata']['Views']), name
        assert m['Results'], f'{path}: {name}: no results'
        for r in m['Results']:
            assert {'Dataset', 'Task', 'Metrics', 'Source'} <= set(r), f'{path}: {name}: {r}'
            assert r['Metrics'] and all(isinstance(v, (int, float)) and 0 <= v <= 100
                                        for v in r['Metrics'].values()), f'{name}: {r}'
        if 'Checkpoint Layout' in m['Metadata']:
            assert 'Weights' in m, f'{path}: {name}: a released checkpoint needs its Weights'
            assert m['Metadata']['Checkpoint Layout'] in LAYOUTS, name
            assert ('Checkpoint Classes' in m['Metadata']) == (
                m['Metadata']['Checkpoint Layout'] != 'official-pretrain'), name
        if 'Weights' in m:
            assert isinstance(m['Weights'], str) and m['Weights'], name
    names = [m['Name'] for _, m in MODELS_LISTED]
    assert len(names) == len(set(names)), 'model names must be unique across metafiles'


def _shrink(node, key=None):
    """Every VideoMAE V2 ViT in a model config at depth 1 (real width / patch), no pretrained
    checkpoint and no activation checkpointing, so even ViT-g builds in about a second. A
    pretrainer's decoder keeps the size its encoder arch name selects."""
    if isinstance(node, dict):
        enc = node.get('encoder')
        if node.get('type') == 'VideoMAEv2Pretrainer' and isinstance(enc.get('arch'), str):
            node['decoder'] = dict(DECODER_SETTINGS[enc['arch']], **(node.get('decoder') or {}))
        kind = str(node.get('type', ''))
        if 'arch' in node and (kind.endswith('VideoMAEv2ViT') or key in ('encoder', 'teacher')):
            arch = node['arch']
            arch = dict(ARCH_SETTINGS[arch]) if isinstance(arch, str) else dict(arch)
            node.update(arch=dict(arch, depth=1), init_cfg=None)
            if 'with_cp' in node:
                node['with_cp'] = False
        for k, v in node.items():
            _shrink(v, k)
    elif isinstance(node, list):
        for v in node:
            _shrink(v, key)


def _build(config):
    cfg = Config.fromfile(str(ROOT / config))
    model_cfg = copy.deepcopy(cfg.model)  # a ConfigDict: mmdet detectors read attributes
    _shrink(model_cfg)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    torch.manual_seed(0)
    return cfg, MODELS.build(model_cfg).eval()


@pytest.mark.parametrize('config', CONFIGS, ids=[Path(c).stem for c in CONFIGS])
def test_config_exists_and_builds(config):
    assert (ROOT / config).is_file(), f'{config} named in a metafile does not exist'
    cfg, model = _build(config)
    assert sum(p.numel() for p in model.parameters()) > 0


def _readme_paths(text):
    links = re.findall(r'\]\((/?configs/[^)\s#]+)\)', text)
    quoted = re.findall(r'`(configs/[^`\s]+\.py)`', text)
    return {p.lstrip('/') for p in links + quoted}


@pytest.mark.parametrize('readme', READMES, ids=lambda p: p.parent.relative_to(ROOT).as_posix())
def test_readme_config_links_exist(readme):
    text = readme.read_text(encoding='utf-8')
    paths = _readme_paths(text)
    assert paths, f'{readme}: links no config'
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f'{readme.relative_to(ROOT)} links missing files: {missing}'
    meta = readme.parent / 'metafile.yml'
    for m in (_load(meta)['Models'] if meta.is_file() else []):
        assert m['Config'] in paths, f"{readme.relative_to(ROOT)} does not link {m['Config']}"


def _released_file(model, classes, layout, path):
    """``model``'s backbone with a ``classes``-row head, saved as the published files are: the
    official fine-tuned layout (``module``-nested ``blocks.*`` / ``fc_norm`` / ``head``, fp16, no
    position table) or an mmaction2 recognizer checkpoint (``backbone.patch_embed.projection``,
    ``mlp.layers``, persistent ``pos_embed``, ``cls_head.fc_cls``). Head row i holds the value
    i (exact in fp16), so the selected rows can be read back."""
    width = model.cls_head.fc_cls.in_features
    head = {'weight': torch.arange(classes, dtype=torch.float32)[:, None].repeat(1, width),
            'bias': torch.arange(classes, dtype=torch.float32)}
    backbone = {k[len('backbone.'):]: v for k, v in model.state_dict().items()
                if k.startswith('backbone.')}
    if layout == 'official':
        sd = {k: v.half() for k, v in backbone.items()}
        sd.update({f'head.{k}': v.half() for k, v in head.items()})
        torch.save({'module': sd, 'epoch': 0}, path)
    else:
        renames = (('patch_embed.proj.', 'patch_embed.projection.'),
                   ('.mlp.fc1.', '.mlp.layers.0.0.'), ('.mlp.fc2.', '.mlp.layers.1.'))
        sd = {}
        for k, v in backbone.items():
            for a, b in renames:
                k = k.replace(a, b)
            sd['backbone.' + k] = v.clone()
        sd['backbone.pos_embed'] = model.backbone.pos_embed.clone()
        sd.update({f'cls_head.fc_cls.{k}': v for k, v in head.items()})
        torch.save({'state_dict': sd, 'meta': {}}, path)
    return backbone


@pytest.mark.parametrize('entry', RELEASED, ids=[m['Name'] for _, m in RELEASED])
def test_released_checkpoint_layout_loads_strictly(entry, tmp_path):
    _, m = entry
    classes, layout = m['Metadata']['Checkpoint Classes'], m['Metadata']['Checkpoint Layout']
    _, src = _build(m['Config'])
    path = tmp_path / 'released.pth'
    backbone = _released_file(src, classes, layout, path)
    _, dst = _build(m['Config'])
    num_classes = dst.cls_head.fc_cls.out_features
    install_foreign_checkpoint_hook(dst, strict=True)
    load_checkpoint(dst, str(path), strict=True)
    qkv = backbone['blocks.0.attn.qkv.weight']
    qkv = qkv.half().float() if layout == 'official' else qkv
    assert torch.equal(dst.backbone.blocks[0].attn.qkv.weight, qkv)
    rows = dst.cls_head.fc_cls.bias.tolist()
    if classes == num_classes:
        assert rows == list(range(classes))
    else:  # a K710 head, rows selected by the shipped map of the config's class count
        assert rows == load_label_map(AUTO_LABEL_MAPS[(classes, num_classes)])


@pytest.mark.parametrize('entry', PRETRAINED, ids=[m['Name'] for _, m in PRETRAINED])
def test_released_pretrain_checkpoint_loads_one_to_one(entry, tmp_path):
    """The official pre-training file (``model``-nested, ``_orig_mod.``-prefixed ``encoder.*``,
    ``decoder.*``, ``encoder_to_decoder``, ``mask_token``, fp16 here) restores every tensor of the
    config's pretrainer (encoder at depth 1, the real decoder), by the pretrainer's init_cfg."""
    _, m = entry
    cfg, src = _build(m['Config'])
    official = {'_orig_mod.' + k: v.half() for k, v in src.state_dict().items()}
    assert {'mask_token', 'encoder_to_decoder.weight', 'decoder.head.weight'} <= {
        k[len('_orig_mod.'):] for k in official}
    path = tmp_path / 'pretrain.pth'
    torch.save({'model': official, 'epoch': 299}, path)
    model_cfg = copy.deepcopy(cfg.model)
    _shrink(model_cfg)
    model_cfg['init_cfg'] = dict(type='Pretrained', checkpoint=str(path))
    torch.manual_seed(1)
    dst = MODELS.build(model_cfg)
    dst.init_weights()
    for k, v in dst.state_dict().items():
        assert torch.equal(v, official['_orig_mod.' + k].float()), k

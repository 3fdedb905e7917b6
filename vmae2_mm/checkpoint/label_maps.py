"""Kinetics class lists and the K710 -> K400/K600/K700 head index maps.

K710 (LabeledHybrid) is the union of Kinetics-400/600/700 with identical-meaning names merged;
a K710 classifier becomes a K400/K600/K700 classifier by selecting rows of its head:
``head_400.weight = head_710.weight[map_710to400]``. A map is a JSON list whose i-th entry is
the K710 index of the i-th target class, in the class order of the target class list.

Files shipped in ``vmae2_mm/data`` (package data; provenance in ``vmae2_mm/data/README.md``)
and looked up by short name:

* ``label_map_k{400,600,700,710}.txt``: one class name per line, in the class-index order the
  released VideoMAE V2 checkpoints use; byte-identical copies of the official repository's
  ``misc/label_map_k*.txt``. K400 is mmaction2's alphabetical order (13 classes carry their
  K710 names); K600/K700/K710 follow the official data lists, not an alphabetical order.
* ``label_710to{400,600,700}.json``: generated from those lists by ``tools/make_label_maps.py``;
  byte-identical to the official ``misc/label_710to*.json``.
Any file path works in place of a short name.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

DATA_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data')

#: Short names accepted wherever a label map is expected.
KNOWN_MAPS = {
    'k710to400': 'label_710to400.json',
    'k710to600': 'label_710to600.json',
    'k710to700': 'label_710to700.json',
}
KNOWN_CLASS_LISTS = {
    'k400': 'label_map_k400.txt',
    'k600': 'label_map_k600.txt',
    'k700': 'label_map_k700.txt',
    'k710': 'label_map_k710.txt',
}


def read_class_list(path: str) -> List[str]:
    """Read a class list: one name per line (blank lines ignored), or a known short name.

    Args:
        path (str): File path, or one of ``'k400' | 'k600' | 'k700' | 'k710'``.

    Returns:
        list[str]: Class names in index order.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: A name occurs twice (the index of that class would be ambiguous).
    """
    if path in KNOWN_CLASS_LISTS:
        path = osp.join(DATA_DIR, KNOWN_CLASS_LISTS[path])
    if not osp.isfile(path):
        raise FileNotFoundError(f'class list {path!r} not found (a file, or one of '
                                f'{sorted(KNOWN_CLASS_LISTS)})')
    with open(path, encoding='utf-8') as f:
        names = [ln.strip() for ln in f if ln.strip()]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f'class list {path}: duplicate class names {dup[:10]} (each class '
                         f'must appear once)')
    return names


def build_label_map(source: Sequence[str], target: Sequence[str],
                    aliases: Optional[Dict[str, str]] = None) -> List[int]:
    """Index map from a source class list (e.g. K710) to a target one (e.g. K400).

    Args:
        source (Sequence[str]): Source class names (the classifier's rows).
        target (Sequence[str]): Target class names, in target index order.
        aliases (dict, optional): target name -> source name for renamed classes.

    Returns:
        list[int]: ``m`` with ``source[m[i]]`` naming ``target[i]`` (length ``len(target)``).

    Raises:
        ValueError: A target name is neither in ``source`` nor aliased to a source name, or two
            target classes resolve to the same source class.
    """
    aliases = aliases or {}
    index = {name: i for i, name in enumerate(source)}
    out, missing = [], []
    for name in target:
        key = name if name in index else aliases.get(name)
        if key not in index:
            missing.append(name)
            continue
        out.append(index[key])
    if missing:
        raise ValueError(f'{len(missing)} target classes have no source class of the same name '
                         f'(add them to the aliases, target name -> source name): {missing[:10]}')
    if len(set(out)) != len(out):
        seen, dup = {}, []
        for name, i in zip(target, out):
            if i in seen:
                dup.append(f'{seen[i]!r} and {name!r} -> {source[i]!r}')
            seen.setdefault(i, name)
        raise ValueError(f'target classes map to the same source class: {dup[:5]}')
    return out


def write_label_map(mapping: Sequence[int], path: str) -> None:
    """Write a head index map as the official repository formats it (a JSON list, two-space
    indent, no trailing newline), so a regenerated file compares byte-for-byte with it.

    Args:
        mapping (Sequence[int]): Source row for each target class.
        path (str): Output ``.json`` file.
    """
    with open(path, 'w', encoding='utf-8') as f:
        json.dump([int(i) for i in mapping], f, indent=2)


def load_label_map(name_or_path: str) -> List[int]:
    """Load a head index map by short name (``'k710to400'`` ...) or JSON file path.

    Args:
        name_or_path (str): ``'k710to400' | 'k710to600' | 'k710to700'`` or a JSON file holding
            a list of non-negative ints.

    Returns:
        list[int]: Source row index for each target class.
    """
    path = name_or_path
    if name_or_path in KNOWN_MAPS:
        path = osp.join(DATA_DIR, KNOWN_MAPS[name_or_path])
    if not osp.isfile(path):
        raise FileNotFoundError(f'label map {name_or_path!r} not found (a JSON file, or one of '
                                f'{sorted(KNOWN_MAPS)})')
    with open(path, encoding='utf-8') as f:
        data = json.load(f)
    if not isinstance(data, list) or not all(isinstance(i, int) and i >= 0 for i in data):
        raise ValueError(f'{path}: a label map must be a JSON list of non-negative integers')
    return data


__all__ = ['DATA_DIR', 'KNOWN_MAPS', 'KNOWN_CLASS_LISTS', 'read_class_list', 'build_label_map',
           'write_label_map', 'load_label_map']

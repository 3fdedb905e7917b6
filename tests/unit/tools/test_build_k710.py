"""tools/data/build_k710.py on generated Kinetics-layout CSVs: union, dedup, val cleanup, classes."""
import json
import runpy

import pytest

from tests.conftest import load_script

_tool = load_script('tools/data/build_k710.py')
build_k710, normalize_class_name = _tool.build_k710, _tool.normalize_class_name

HEADER = 'label,youtube_id,time_start,time_end,split'


def write_csv(path, rows, header=HEADER):
    path.write_text(header + '\n' + '\n'.join(rows) + '\n')
    return str(path)


@pytest.fixture
def csvs(tmp_path):
    k400 = write_csv(tmp_path / 'k400.csv', [
        'abseiling,aaa,10,20,train',
        '"dying hair",bbb,0,10,train',
        'tying tie,ccc,5,15,val',          # also in K600 train -> dropped from val
        'abseiling,ddd,1,11,val',
    ])
    k600 = write_csv(tmp_path / 'k600.csv', [
        'Abseiling,aaa,10,20,train',       # duplicate id, same class after normalisation
        'dyeing_hair,eee,3,13,train',
        'tying necktie,ccc,5,15,train',
        'tying necktie,fff,0,10,validate',
        'acting in play,ggg,2,12,test',    # test rows are ignored
    ])
    k700 = write_csv(tmp_path / 'k700.csv', [
        'abseiling,hhh,0,10,train,0',
        'dyeing hair,bbb,0,10,train,0',    # newest annotation of bbb wins
        'abseiling,ddd,1,11,val,1',        # duplicate val id
    ], header=HEADER + ',is_cc')
    return dict(k400=[k400], k600=[k600], k700=[k700])


def test_union_dedup_and_val_cleanup(csvs):
    res = build_k710(csvs, aliases={'dying hair': 'dyeing hair', 'tying tie': 'tying necktie'})
    assert res['classes'] == ['abseiling', 'dyeing hair', 'tying necktie']
    train = {r['youtube_id']: r['class_name'] for r in res['train']}
    assert train == {'hhh': 'abseiling', 'bbb': 'dyeing hair', 'aaa': 'abseiling',
                     'eee': 'dyeing hair', 'ccc': 'tying necktie'}
    assert [r['youtube_id'] for r in res['val']] == ['ddd', 'fff']
    assert res['stats']['val_dropped_in_train'] == 1
    assert res['stats']['duplicate_train'] == 2 and res['stats']['duplicate_val'] == 1
    assert res['stats'].get('label_conflicts', 0) == 0
    # without the alias table, renamed classes stay apart and the shared id is a conflict
    plain = build_k710(csvs)
    assert plain['classes'] == ['abseiling', 'dyeing hair', 'dying hair', 'tying necktie',
                                'tying tie']
    assert plain['stats']['label_conflicts'] == 1


def test_cli_writes_lists_classes_and_label_maps(csvs, tmp_path, repo_root):
    aliases = tmp_path / 'aliases.json'
    aliases.write_text(json.dumps({'Dying_Hair': 'dyeing hair', 'tying tie': 'tying necktie'}))
    out = tmp_path / 'k710'
    tool = runpy.run_path(str(repo_root / 'tools' / 'data' / 'build_k710.py'), run_name='build_k710')
    tool['main'](['--k400', *csvs['k400'], '--k600', *csvs['k600'], '--k700', *csvs['k700'],
                  '--out', str(out), '--aliases', str(aliases), '--path-template',
                  '{split}/{label_dir}/{youtube_id}_{time_start:06d}.mp4'])
    train = (out / 'kinetics710_train_list_videos.txt').read_text().splitlines()
    assert train == ['train/abseiling/hhh_000000.mp4 0', 'train/dyeing_hair/bbb_000000.mp4 1',
                     'train/Abseiling/aaa_000010.mp4 0', 'train/dyeing_hair/eee_000003.mp4 1',
                     'train/tying_necktie/ccc_000005.mp4 2']
    assert (out / 'kinetics710_val_list_videos.txt').read_text().splitlines() == [
        'val/abseiling/ddd_000001.mp4 0', 'val/tying_necktie/fff_000000.mp4 2']
    assert (out / 'label_map_k710.txt').read_text().split('\n')[:3] == [
        'abseiling', 'dyeing hair', 'tying necktie']
    # K400 classes (sorted: abseiling, dying hair, tying tie) -> merged indices
    assert json.loads((out / 'label_710to400.json').read_text()) == [0, 1, 2]
    assert json.loads((out / 'label_710to600.json').read_text()) == [0, 1, 2]


def test_bad_csvs_name_file_and_line(tmp_path):
    bad = write_csv(tmp_path / 'bad.csv', ['x,yid,0,10,train'], header='label,youtube_id,split')
    with pytest.raises(ValueError, match=r'bad.csv: missing columns'):
        build_k710({'k400': [bad]})
    bad = write_csv(tmp_path / 'bad2.csv', ['x,yid,0,10,train', 'x,y2,a,10,train'])
    with pytest.raises(ValueError, match=r'bad2.csv:3: time_start'):
        build_k710({'k400': [bad]})
    bad = write_csv(tmp_path / 'bad3.csv', ['x,yid,0,10,holdout'])
    with pytest.raises(ValueError, match=r'bad3.csv:2: unknown split'):
        build_k710({'k400': [bad]})
    assert normalize_class_name('  "Passing_American  Football" ') == 'passing american football'

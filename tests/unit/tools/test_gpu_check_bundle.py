"""tools/gpu/check_bundle.py: a wheel bundle for the GPU machine is complete only when every
declared dependency (markers evaluated for CPython 3.12 on Linux) is in the bundle or on the
GPU image; OpenCV under any distribution name counts as the image's opencv-python-headless."""
import zipfile

from tests.conftest import load_script

check = load_script('tools/gpu/check_bundle.py')


def _wheel(folder, name, version, requires):
    path = folder / f'{name}-{version}-py3-none-any.whl'
    meta = [f'Name: {name}', f'Version: {version}'] + [f'Requires-Dist: {r}' for r in requires]
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr(f'{name}-{version}.dist-info/METADATA', '\n'.join(meta) + '\n')
    return path


def test_complete_bundle_passes_and_gaps_are_named(tmp_path, capsys):
    _wheel(tmp_path, 'mmengine', '0.10.7', ['addict', 'numpy', 'opencv-python>=3',
                                            'regex; sys_platform == "win32"',
                                            'pytest; extra == "tests"'])
    _wheel(tmp_path, 'addict', '2.4.0', [])
    assert check.missing_requirements(tmp_path) == {}
    assert check.main([str(tmp_path)]) == 0
    _wheel(tmp_path, 'mmdet', '3.3.0', ['terminaltables', 'Shapely', 'scipy'])
    assert check.missing_requirements(tmp_path) == {
        'mmdet-3.3.0-py3-none-any.whl': ['terminaltables', 'shapely']}
    assert check.main([str(tmp_path)]) == 1
    assert 'mmdet-3.3.0-py3-none-any.whl needs terminaltables, shapely' in capsys.readouterr().err


def test_two_versions_of_one_package_fail(tmp_path, capsys):
    _wheel(tmp_path, 'addict', '2.4.0', [])
    _wheel(tmp_path, 'addict', '2.3.0', [])
    assert check.main([str(tmp_path)]) == 1
    assert 'more than one version of addict' in capsys.readouterr().err


def test_empty_folder_fails(tmp_path):
    assert check.main([str(tmp_path)]) == 1

"""Runs ddsp/colab/demos/timbre_transfer.ipynb headless on a tiny model."""
import os
import sys

import nbformat
import soundfile as sf

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'training'))
import model_dir_testlib  # noqa: E402
import notebook_runner  # noqa: E402

NOTEBOOK = os.path.join(notebook_runner.NOTEBOOK_ROOT, 'demos',
                        'timbre_transfer.ipynb')
VOICE = os.path.join(notebook_runner.REPO_ROOT, 'data', 'voice',
                     'voice_like.wav')


def test_notebook_is_committed_clean():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == 'code']
    assert all(not c.outputs and c.execution_count is None for c in code)
    params = notebook.cells[notebook_runner.parameter_cell_index(notebook)]
    for name in ('INPUT_SOURCE', 'INPUT_PATH', 'MODEL_DIR', 'THRESHOLD',
                 'ADJUST', 'QUIET', 'AUTOTUNE', 'PITCH_SHIFT',
                 'LOUDNESS_SHIFT', 'CREPE_MODEL_CAPACITY'):
        assert f'{name} = ' in params.source


def test_notebook_runs_on_a_tiny_model(tmp_path):
    model_dir = model_dir_testlib.make_model_dir(str(tmp_path / 'model'))
    audio, rate = sf.read(VOICE, dtype='float32')
    clip = str(tmp_path / 'clip.wav')
    sf.write(clip, audio[rate // 4:2 * rate], rate)
    plot = tmp_path / 'summary.png'
    notebook = notebook_runner.run_notebook(NOTEBOOK, overrides={
        'INPUT_SOURCE': 'file',
        'INPUT_PATH': clip,
        'MODEL_DIR': model_dir,
        'CREPE_MODEL_CAPACITY': 'tiny',
        'CREPE_FRAME_RATE': 50,
        'PITCH_SHIFT': -1,
        'ACOUSTIC_TRANSFER': True,
        'PLOT_PATH': str(plot),
    }, timeout=180, cwd=str(tmp_path))
    with open(plot, 'rb') as f:
        assert f.read(4) == b'\x89PNG'
    html = [o.get('data', {}).get('text/html', '')
            for c in notebook.cells if c.cell_type == 'code'
            for o in c.get('outputs', [])]
    # Players: the input, the original and the transfer, the room.
    assert sum('<audio' in h for h in html) == 4
    text = ''.join(o.get('text', '') for c in notebook.cells
                   if c.cell_type == 'code' for o in c.get('outputs', []))
    assert 'Octave shift' in text

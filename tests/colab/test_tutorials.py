"""Runs every tutorial notebook headless with small settings.

The notebooks must also follow the notebook conventions: committed without
outputs, one `parameters` cell, a Colab/local set-up cell.
"""
import ast
import glob
import os
import re
import sys

import nbformat
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import notebook_runner  # noqa: E402

TUTORIALS = os.path.join(notebook_runner.NOTEBOOK_ROOT, 'tutorials')
ALL_NOTEBOOKS = sorted(
    glob.glob(os.path.join(notebook_runner.NOTEBOOK_ROOT, '*', '*.ipynb')))
OWN_NOTEBOOKS = sorted(glob.glob(os.path.join(TUTORIALS, '*.ipynb'))) + [
    os.path.join(notebook_runner.NOTEBOOK_ROOT, 'demos',
                 'train_autoencoder.ipynb')]

# Small settings per tutorial: short audio, few frames and steps.
OVERRIDES = {
    '0_processor.ipynb': {'SECONDS': 0.5, 'N_FRAMES': 50, 'N_HARMONICS': 20},
    '1_synths_and_effects.ipynb': {'SECONDS': 0.5, 'N_FRAMES': 50,
                                   'REVERB_SECONDS': 0.25},
    '2_processor_group.ipynb': {'SECONDS': 0.5, 'N_FRAMES': 50,
                                'REVERB_SECONDS': 0.1},
    '3_training.ipynb': {'SECONDS': 1.0, 'N_STEPS': 20, 'N_GIN_STEPS': 5,
                         'RNN_CHANNELS': 32, 'N_HARMONICS': 20,
                         'FFT_SIZES': (1024, 256, 64), 'LOG_EVERY': 5},
    '4_core_functions.ipynb': {'SECONDS': 0.5, 'N_FRAMES': 50},
}


def parameter_names(notebook) -> set:
    cell = notebook.cells[notebook_runner.parameter_cell_index(notebook)]
    return {target.id for node in ast.parse(cell.source).body
            if isinstance(node, ast.Assign) for target in node.targets
            if isinstance(target, ast.Name)}


def stdout_text(notebook) -> str:
    return ''.join(output.get('text', '') for cell in notebook.cells
                   if cell.cell_type == 'code'
                   for output in cell.get('outputs', [])
                   if output.get('name') == 'stdout')


def test_every_tutorial_has_small_settings():
    names = sorted(os.path.basename(p)
                   for p in glob.glob(os.path.join(TUTORIALS, '*.ipynb')))
    assert names == sorted(OVERRIDES)


@pytest.mark.parametrize('path', OWN_NOTEBOOKS, ids=os.path.basename)
def test_notebook_conventions(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == 'markdown'
    code_cells = [c for c in notebook.cells if c.cell_type == 'code']
    assert all(not c.outputs and c.execution_count is None
               for c in code_cells), 'commit notebooks without outputs'
    setup = code_cells[0].source
    assert "IN_COLAB = 'google.colab' in sys.modules" in setup
    assert 'DDSP_REPO' in setup and '%pip install' in setup
    index = notebook_runner.parameter_cell_index(notebook)
    assert notebook.cells[index].cell_type == 'code'
    # No network at run time: nothing fetched besides the Colab install.
    for cell in code_cells[1:]:
        assert not re.search(r'https?://|gs://|wget|curl', cell.source), (
            cell.source[:200])


@pytest.mark.parametrize('name', sorted(OVERRIDES))
def test_overrides_name_parameters(name):
    notebook = nbformat.read(os.path.join(TUTORIALS, name), as_version=4)
    assert set(OVERRIDES[name]) <= parameter_names(notebook)


@pytest.mark.parametrize('name', sorted(set(OVERRIDES) - {'3_training.ipynb'}))
def test_tutorial_runs(name):
    notebook = notebook_runner.run_notebook(os.path.join(TUTORIALS, name),
                                            OVERRIDES[name])
    errors = [o for c in notebook.cells for o in c.get('outputs', [])
              if o.get('output_type') == 'error']
    assert not errors
    # Every tutorial shows plots and audio players.
    outputs = [o for c in notebook.cells for o in c.get('outputs', [])]
    assert any('image/png' in o.get('data', {}) for o in outputs)
    assert any('<audio' in o.get('data', {}).get('text/html', '')
               for o in outputs)


def test_training_tutorial_lowers_the_loss(tmp_path):
    overrides = dict(OVERRIDES['3_training.ipynb'],
                     CHECKPOINT_DIR=str(tmp_path))
    notebook = notebook_runner.run_notebook(
        os.path.join(TUTORIALS, '3_training.ipynb'), overrides)
    values = dict(re.findall(r'(\w+_LOSS)=([0-9.]+)', stdout_text(notebook)))
    losses = {k: float(v) for k, v in values.items()}
    assert losses['FINAL_LOSS'] < losses['FIRST_LOSS']
    assert losses['GIN_FINAL_LOSS'] < losses['GIN_FIRST_LOSS']
    assert glob.glob(str(tmp_path / 'ckpt-*.index'))
    assert 'restored decoder weights match: True' in stdout_text(notebook)

"""Runs the train_autoencoder demo headless: 3 s of violin, a tiny model,
3 training steps; checks the model folder it leaves behind."""
import glob
import os
import re
import sys

import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import notebook_runner  # noqa: E402

NOTEBOOK = os.path.join(notebook_runner.NOTEBOOK_ROOT, 'demos',
                        'train_autoencoder.ipynb')
VIOLIN = os.path.join(notebook_runner.REPO_ROOT, 'data', 'violin_01.wav')
N_RESYNTHESIS = 2


def test_train_autoencoder_notebook(tmp_path):
    audio, sample_rate = sf.read(VIOLIN)
    clip = tmp_path / 'clip.wav'
    sf.write(str(clip), audio[sample_rate:4 * sample_rate], sample_rate)
    work_dir = tmp_path / 'work'
    notebook = notebook_runner.run_notebook(NOTEBOOK, {
        'AUDIO_FILEPATTERN': str(clip),
        'WORK_DIR': str(work_dir),
        'MODEL_GIN': 'models/tiny.gin',
        'EXAMPLE_SECS': 1.0,
        'HOP_SECS': 0.5,
        'BATCH_SIZE': 2,
        'TRAIN_STEPS': 3,
        'STEPS_PER_SAVE': 3,
        'STEPS_PER_SUMMARY': 3,
        'EXTRA_GIN_PARAMS': ['RnnFcDecoder.rnn_channels = 16',
                             'RnnFcDecoder.ch = 16',
                             'Reverb.reverb_length = 1000',
                             'SpectralLoss.fft_sizes = (1024, 256, 64)'],
        'SHOW_TENSORBOARD': False,
        'N_RESYNTHESIS_EXAMPLES': N_RESYNTHESIS,
    })
    text = ''.join(o.get('text', '') for c in notebook.cells
                   for o in c.get('outputs', []) if o.get('name') == 'stdout')
    summary = dict(re.findall(r'(\w+)=(\S+)', text.splitlines()[-1]))
    assert summary['CHECKPOINTS'] == '1' and summary['STATISTICS'] == 'True'

    model_dir = work_dir / 'model'
    assert (model_dir / 'ckpt-3.index').exists()
    assert glob.glob(str(model_dir / 'operative_config-*.gin'))
    assert (model_dir / 'dataset_statistics.json').exists()
    assert glob.glob(str(work_dir / 'data' / 'train.tfrecord-*'))
    assert glob.glob(str(model_dir / 'summaries' / 'train' / 'events*'))
    # The resynthesis cell plays an original and a resynthesis per example.
    players = [o for c in notebook.cells for o in c.get('outputs', [])
               if '<audio' in o.get('data', {}).get('text/html', '')]
    assert len(players) >= 1 + 1 + 2 * N_RESYNTHESIS

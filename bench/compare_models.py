"""Compares model variants trained briefly on data/ and measures the temporal
coherence of generated z; writes bench/model_comparison.md.

Prerequisites (about 4 minutes each on 2 CPUs; the prepared data of `make demo`
in demo_out/data, i.e. ddsp_prepare_tfrecord --crepe_model_capacity=tiny
--crepe_frame_rate=50 --eval_split_fraction=0.1 on data/*.wav):

    COMMON="--gin_file=datasets/tfrecord.gin \
      --gin_param=TFRecordProvider.file_pattern='demo_out/data/train.tfrecord-train*' \
      --gin_param=train.batch_size=8 --gin_param=train.num_steps=300 \
      --gin_param=Trainer.learning_rate=0.003"
    SMALL="--gin_param=RnnFcDecoder.rnn_channels=128 --gin_param=RnnFcDecoder.ch=128 \
      --gin_param=RnnFcDecoder.layers_per_stack=1"
    ddsp_run --save_dir=/tmp/cmp/tiny --gin_file=models/tiny.gin $COMMON
    ddsp_run --save_dir=/tmp/cmp/harmonic_only --gin_file=models/harmonic_only.gin \
      $COMMON $SMALL
    ddsp_run --save_dir=/tmp/cmp/ae_tiny --gin_file=models/ae.gin $COMMON $SMALL \
      --gin_param=MfccTimeDistributedRnnEncoder.rnn_channels=128

Then:

    .venv/bin/python bench/compare_models.py --root=/tmp/cmp

Part 1 runs `ddsp_evaluate` on the held-out split. Part 2 fits the z GMM of
the model with an encoder (`ddsp_generate --fit_gmm_on`, train split) and
measures the spectral-centroid flicker (mean |frame-to-frame change| of the
output's spectral centroid, cents, on note-on frames) of held-out examples
resynthesized with their real f0 / loudness and
  (a) the encoder's z of the real audio,
  (b) one GMM draw per detected note, held and crossfaded (what
      `ddsp_generate` does),
  (c) an independent GMM draw per frame;
and of data/violin_01_notes.csv generated from notes alone with (b) and (c).
"""
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

flags.DEFINE_string('root', '/tmp/cmp', 'Folder of the trained model dirs.')
flags.DEFINE_list('variants', ['harmonic_only', 'tiny', 'ae_tiny'],
                  'Model dirs under --root to compare.')
flags.DEFINE_string('z_model', 'ae_tiny', 'The variant with an encoder.')
flags.DEFINE_string('data', 'demo_out/data/train.tfrecord',
                    'Prepared dataset prefix (-train / -eval shards).')
flags.DEFINE_integer('max_clips', 6, 'Held-out examples evaluated.')
flags.DEFINE_integer('seeds', 3, 'z seeds averaged in part 2.')
flags.DEFINE_string('output', 'bench/model_comparison.md', 'Report path.')
FLAGS = flags.FLAGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def evaluate_variants() -> str:
    out = os.path.join(FLAGS.root, 'evaluation')
    dirs = ','.join(os.path.join(FLAGS.root, v) for v in FLAGS.variants)
    subprocess.run([_script('ddsp_evaluate'), f'--model_dirs={dirs}',
                    f'--file_pattern={FLAGS.data}-eval*',
                    f'--output_dir={out}', f'--max_clips={FLAGS.max_clips}',
                    '--crepe_model_capacity=tiny', '--crepe_frame_rate=50'],
                   check=True, cwd=REPO)
    with open(os.path.join(out, 'evaluation.md')) as f:
        return f.read().split('\n', 3)[3].strip() + '\n'  # The table.


def _note_index(mask_on, min_frames=25):
    """Detected notes (runs of note-on frames) as a note_index array."""
    from ddsp.training.generation import z_collection
    index = np.full(len(mask_on), -1, np.int32)
    runs = [r for r in z_collection._runs(mask_on)
            if r[1] - r[0] >= min_frames]
    for i, (a, b) in enumerate(runs):
        index[a:b] = i
    return index


def coherence() -> dict:
    from ddsp.training import data
    from ddsp.training import generation
    from ddsp.training import inference
    from ddsp.training import postprocessing
    model_dir = os.path.join(FLAGS.root, FLAGS.z_model)
    gmm_path = os.path.join(FLAGS.root, 'z_gmm.npz')
    subprocess.run([_script('ddsp_generate'), f'--model_dir={model_dir}',
                    f'--fit_gmm_on={FLAGS.data}-train*', f'--gmm={gmm_path}'],
                   check=True, cwd=REPO)
    gmm = generation.load_gmm(gmm_path)
    trained = inference.load_model(model_dir)
    sr, fr = trained.sample_rate, trained.frame_rate
    provider = data.TFRecordProvider(f'{FLAGS.data}-eval*')
    flicker = {'encoder z (real notes)': [], 'GMM per note (held)': [],
               'GMM per frame': []}
    for i, ex in enumerate(provider.get_dataset(shuffle=False)):
        if i >= FLAGS.max_clips:
            break
        audio = ex['audio'].numpy()
        f0, ld = ex['f0_hz'].numpy(), ex['loudness_db'].numpy()
        mask, _ = postprocessing.detect_notes(ld, ex['f0_confidence'].numpy())
        index = _note_index(mask)
        if index.max() < 0:
            continue
        sustained = index >= 0
        z_real = inference.compute_z(trained, audio, len(f0))
        runs = [('encoder z (real notes)', z_real)]
        for seed in range(FLAGS.seeds):
            runs += [('GMM per note (held)', generation.sample_z(
                         gmm, index, seed, 'note',
                         round(generation.DEFAULT_CROSSFADE_S * fr))),
                     ('GMM per frame', generation.sample_z(
                         gmm, index, seed, 'frame'))]
        for name, z in runs:
            out = inference.synthesize(trained, f0, ld, z)
            flicker[name].append(generation.spectral_centroid_flicker(
                out, sr, fr, sustained))
    notes = generation.read_notes(os.path.join(REPO, 'data',
                                               'violin_01_notes.csv'))
    generated = {}
    for per in ('note', 'frame'):
        values = []
        for seed in range(FLAGS.seeds):
            result = generation.generate(trained, notes, gmm, seed=seed,
                                         z_per=per)
            values.append(generation.spectral_centroid_flicker(
                result.audio, sr, fr, result.curves['sustained']))
        generated[per] = float(np.mean(values))
    return {'n_components': gmm.n_components, 'gmm': gmm.metadata,
            'resynthesis': {k: (float(np.mean(v)), float(np.std(v)), len(v))
                            for k, v in flicker.items()},
            'generated': generated}


def main(unused_argv):
    start = time.time()
    table = evaluate_variants()
    c = coherence()
    rows = '\n'.join(f'| {k} | {m:.1f} | {s:.1f} | {n} |'
                     for k, (m, s, n) in c['resynthesis'].items())
    selection = ', '.join(f'{k}: {v:.0f}'
                          for k, v in c['gmm']['selection'].items())
    report = f"""# Model comparison (issue 7)

Made by `bench/compare_models.py` ({time.time() - start:.0f} s on a shared
2-CPU machine). Variants trained for 300 steps (batch 8, learning rate 0.003,
4 s examples) on the 84 s of violin in `data/` (train split, prepared with
CREPE tiny at 50 frames/s); evaluated with `ddsp_evaluate` on
{FLAGS.max_clips} held-out examples (CREPE tiny at 50 frames/s on the output).

- `harmonic_only`: `models/harmonic_only.gin` with GRU 128, one layer per
  stack (the size of `tiny.gin`): harmonics only, no noise, no reverb.
- `tiny`: `models/tiny.gin`: harmonics + filtered noise + reverb.
- `ae_tiny`: `models/ae.gin` at the same size: harmonics + noise, with a 16-dim
  z from an MFCC/GRU-128 encoder, no reverb.

{table}
Lower is better except ViSQOL. These are 300-step models: the numbers rank
the variants at an early stage of training, not their final quality (the
`ae_tiny` loudness error, for one, says its decoder has not yet learned to
follow loudness as well as the others).

## Temporal coherence of sampled z

The GMM (`ddsp_generate --fit_gmm_on`, train split; one vector per detected
note segment of at most 1 s: its mean z; {c['gmm']['n_fit']} segments) has
{c['n_components']} component(s) by BIC ({selection}).

Spectral-centroid flicker: mean |frame-to-frame change| of the output's
spectral centroid in cents, on note-on frames (lower = steadier timbre).
Held-out examples resynthesized from their real f0 and loudness with
different z ({FLAGS.seeds} seeds for the GMM rows):

| z | flicker (cents/frame) | std over clips | n |
|---|---:|---:|---:|
{rows}

Generated from `data/violin_01_notes.csv` alone (`ddsp_generate`): per-note
held z {c['generated']['note']:.1f} cents/frame, per-frame z
{c['generated']['frame']:.1f} cents/frame.

Choice: one z per note, held through the note and its release, crossfaded
over 50 ms between notes (`generation.sample_z(per='note')`). Per-frame draws
flicker; held draws are as steady as (or steadier than) the encoder's z of
real notes, whose own within-note timbre movement a held z does not
reproduce (a model of within-note dynamics would be the next step).
"""
    with open(FLAGS.output, 'w') as f:
        f.write(report)
    print(report)


if __name__ == '__main__':
    app.run(main)

"""`make demo`: renders a melody through the DDSP synthesizers.

Until the training pipeline lands this demo drives the synthesizers directly:
a melody given as f0 and loudness curves (with vibrato and dynamics) goes
through Harmonic + FilteredNoise + Reverb, and the result is written to
`<output_dir>/*.wav` together with a spectrogram and control plot.

    python -m ddsp.demo --output_dir=demo_out
"""
from __future__ import annotations

import os
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

flags.DEFINE_string('output_dir', 'demo_out', 'Where audio and plots go.')
flags.DEFINE_integer('sample_rate', 16000, 'Audio sample rate (Hz).')
flags.DEFINE_integer('frame_rate', 250, 'Control frame rate (Hz).')
FLAGS = flags.FLAGS

# (MIDI pitch, duration in seconds, peak loudness 0..1): a short phrase.
MELODY = [(67, 0.6, 0.7), (69, 0.3, 0.6), (71, 0.6, 0.8), (74, 0.9, 1.0),
          (72, 0.3, 0.6), (71, 0.3, 0.5), (69, 0.6, 0.7), (67, 1.2, 0.9)]


def melody_controls(frame_rate: int) -> dict[str, np.ndarray]:
    """Frame-rate controls for MELODY: f0 with vibrato, amplitude envelopes.

    Returns:
        Dict of float32 arrays: 'f0_hz' [n_frames], 'amplitude' [n_frames],
        'brightness' [n_frames] (0..1, follows loudness like a bowed string).
    """
    f0, amp = [], []
    for pitch, duration, peak in MELODY:
        n = int(round(duration * frame_rate))
        t = np.arange(n) / frame_rate
        # Vibrato fades in after the attack.
        depth = 0.3 * np.clip((t - 0.15) / 0.2, 0.0, 1.0)
        f0.append(440.0 * 2.0 ** ((pitch - 69 + depth * np.sin(2 * np.pi * 5.5 * t))
                                  / 12.0))
        attack = np.clip(t / 0.05, 0.0, 1.0)
        release = np.clip((duration - t) / 0.08, 0.0, 1.0)
        swell = 0.8 + 0.2 * np.sin(np.pi * t / duration)
        amp.append(peak * attack * release * swell)
    f0, amp = np.concatenate(f0), np.concatenate(amp)
    return {'f0_hz': f0.astype(np.float32),
            'amplitude': amp.astype(np.float32),
            'brightness': np.sqrt(amp).astype(np.float32)}


def render(controls: dict[str, np.ndarray], sample_rate: int,
           frame_rate: int) -> dict[str, np.ndarray]:
    """Renders the controls through Harmonic + FilteredNoise + Reverb."""
    import tensorflow as tf
    from ddsp import effects, processors, synths

    n_frames = controls['f0_hz'].shape[0]
    n_samples = n_frames * sample_rate // frame_rate
    n_harmonics, n_bands = 40, 65
    k = np.arange(1, n_harmonics + 1, dtype=np.float32)
    # Brighter notes decay slower over harmonics.
    rolloff = 1.0 + 2.0 * (1.0 - controls['brightness'])[:, None]
    harmonic_distribution = k[None, :] ** -rolloff
    band_hz = np.linspace(0, sample_rate / 2, n_bands)
    noise = 0.02 * controls['amplitude'][:, None] * np.exp(-band_hz / 3000.0)[None]
    reverb_time = np.arange(sample_rate) / sample_rate
    ir = (0.2 * np.exp(-6.0 * reverb_time)
          * np.random.default_rng(0).standard_normal(sample_rate))

    harmonic = synths.Harmonic(n_samples=n_samples, sample_rate=sample_rate,
                               scale_fn=None)
    noise_synth = synths.FilteredNoise(n_samples=n_samples, window_size=0,
                                       scale_fn=None, seed=1)
    group = processors.ProcessorGroup(dag=[
        (harmonic, ['amps', 'harmonic_distribution', 'f0_hz']),
        (noise_synth, ['noise_magnitudes']),
        (processors.Add(), ['filtered_noise/signal', 'harmonic/signal']),
        (effects.Reverb(), ['add/signal', 'ir']),
    ])
    batch = lambda x: tf.constant(x[np.newaxis].astype(np.float32))
    outputs = group({
        'amps': batch(controls['amplitude'][:, None]),
        'harmonic_distribution': batch(harmonic_distribution),
        'f0_hz': batch(controls['f0_hz'][:, None]),
        'noise_magnitudes': batch(noise),
        'ir': batch(ir),
    }, return_outputs_dict=True)['controls']
    return {name: outputs[key]['signal'].numpy()[0] for name, key in
            [('harmonic', 'harmonic'), ('noise', 'filtered_noise'),
             ('dry', 'add'), ('reverb', 'reverb')]}


def save_plot(path: str, audio: np.ndarray, controls: dict[str, np.ndarray],
              sample_rate: int, frame_rate: int):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from scipy import signal

    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    frames_t = np.arange(len(controls['f0_hz'])) / frame_rate
    axes[0].plot(frames_t, controls['f0_hz'])
    axes[0].set_ylabel('f0 (Hz)')
    axes[1].plot(frames_t, controls['amplitude'])
    axes[1].set_ylabel('amplitude')
    f, t, spec = signal.stft(audio, fs=sample_rate, nperseg=1024, noverlap=768)
    axes[2].pcolormesh(t, f, 20 * np.log10(np.abs(spec) + 1e-6), vmin=-100,
                       vmax=0, shading='auto', cmap='magma')
    axes[2].set_ylabel('frequency (Hz)')
    axes[2].set_xlabel('time (s)')
    axes[0].set_title('DDSP synthesis demo: Harmonic + FilteredNoise + Reverb')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv):
    del argv
    import soundfile as sf
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    logging.info('Rendering the melody through the synthesizers...')
    start = time.time()
    controls = melody_controls(FLAGS.frame_rate)
    signals = render(controls, FLAGS.sample_rate, FLAGS.frame_rate)
    peak = max(np.abs(s).max() for s in signals.values())
    for name, audio in signals.items():
        path = os.path.join(FLAGS.output_dir, f'synth_{name}.wav')
        sf.write(path, 0.9 * audio / peak, FLAGS.sample_rate)
        logging.info('wrote %s', path)
    plot_path = os.path.join(FLAGS.output_dir, 'synth_spectrogram.png')
    save_plot(plot_path, signals['reverb'], controls, FLAGS.sample_rate,
              FLAGS.frame_rate)
    logging.info('wrote %s (%.1f s in all)', plot_path, time.time() - start)


if __name__ == '__main__':
    logging.set_verbosity(logging.INFO)
    app.run(main)

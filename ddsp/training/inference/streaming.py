"""Block-by-block synthesis: `StreamingSynthesizer` and `synthesize`."""
from __future__ import annotations

from typing import Optional

from absl import logging
import numpy as np
import tensorflow as tf

from ddsp import core
from ddsp.training import decoders
from ddsp.training.inference.model import TrainedModel
from ddsp.training.inference.model import _check_features
from ddsp.training.inference.offline import NOISE_SEED
from ddsp.training.inference.offline import _PartitionedConvolver
from ddsp.training.inference.offline import _cached
from ddsp.training.inference.offline import _controls
from ddsp.training.inference.offline import _ir_digest
from ddsp.training.inference.offline import _offline
from ddsp.training.inference.offline import _plan
from ddsp.training.inference.offline import _reverb_ir
from ddsp.training.inference.offline import _to_3d
from ddsp.training.inference.offline import get_reverb_ir

DEFAULT_BLOCK_FRAMES = 50  # 0.2 s at 250 frames per second.
_SYNTHESIZE_BLOCK_FRAMES = 1000  # Whole-file rendering: bigger is faster.


# Streaming --------------------------------------------------------------------
def _streamable(model) -> bool:
    decoder = model.decoder
    return isinstance(decoder, decoders.RnnFcDecoder) and decoder.stateless


def _virtual_start_phase(f0_hz: tf.Tensor, hop: int, sample_rate: float,
                         n_harmonics: int) -> tf.Tensor:
    """Harmonic phases one hop before sample 0 that reach 0 at sample 0.

    The phases of a constant f0 interval ending at the first frame. Computed
    in `core.get_phase_dtype()` (float64, or float32 when traced for TFLite);
    the fundamental's phase is wrapped before it is multiplied by k, so that
    float32 errs by ~k * 5e-7 rad at most.

    Args:
        f0_hz: The first frame's f0, [1, 1, 1].
        hop: Samples per frame.
        sample_rate: Samples per second.
        n_harmonics: K.

    Returns:
        float32 phases in [0, 2*pi), [1, 1, K].
    """
    dtype = core.get_phase_dtype()
    advance = tf.cast(f0_hz, dtype) * (2.0 * np.pi * hop / sample_rate)
    fundamental = tf.math.floormod(-advance, 2.0 * np.pi)
    harmonics = fundamental * tf.range(1, n_harmonics + 1, dtype=dtype)
    return tf.cast(tf.math.floormod(harmonics, 2.0 * np.pi), tf.float32)


class StreamingSynthesizer:
    """Block-by-block synthesis with explicit state (see module docstring).

    `process(f0, loudness, z)` takes any number of frames and returns the
    audio that is ready; `flush()` returns the rest. All outputs concatenated
    are the n_frames * hop_size samples of `synthesize_offline` (within
    1e-3). `step(f0, loudness, z, state)` is the pure-TF fixed-size block
    function (block_frames frames in, block_frames * hop_size samples out,
    delayed by latency_samples) for export.
    """

    def __init__(self, trained: TrainedModel, use_reverb: bool = True,
                 block_frames: int = DEFAULT_BLOCK_FRAMES):
        if int(block_frames) != block_frames or block_frames < 1:
            raise ValueError(f'block_frames must be a positive integer, got '
                             f'{block_frames}.')
        model = trained.model
        if not _streamable(model):
            raise ValueError(
                'Streaming needs an RnnFcDecoder built with stateless=True '
                '(load_model binds it); this model has '
                f'{type(model.decoder).__name__}.')
        self.trained = trained
        self.plan = _plan(model)
        self.use_reverb = bool(use_reverb) and self.plan.reverb is not None
        self.block_frames = int(block_frames)
        self.hop_size = trained.hop_size
        self.block_samples = self.block_frames * self.hop_size
        harmonic, magnitudes, _ = self._probe()
        self.n_harmonics = int(harmonic['harmonic_distribution'].shape[-1])
        self._n_bands = None if magnitudes is None else magnitudes.shape[-1]
        self.noise_ir_size = self._probe_noise_ir_size()
        self.noise_delay = self.noise_ir_size // 2
        self.latency_samples = self.hop_size + self.noise_delay
        self.convolver = None
        if self.use_reverb:
            self.convolver = _PartitionedConvolver(
                _reverb_ir(self.plan.reverb).numpy(), self.block_samples)
        # Static control flow only: no autograph (its conversion is slow).
        self._step = tf.function(self.step, autograph=False)
        self.reset()

    # Static sizes, from one decoder call on one frame.
    def _probe(self):
        z = None
        if self.trained.uses_z:
            z = tf.zeros([1, 1, self.trained.z_dims])
        return _controls(self.trained.model, self.plan, tf.fill([1, 1, 1], 220.),
                         tf.fill([1, 1, 1], -40.), z, self._zero_rnn_state())

    def _zero_rnn_state(self):
        return self.trained.model.decoder.zero_state(1)

    def _probe_noise_ir_size(self) -> int:
        if self.plan.noise is None:
            return 0
        ir = core.frequency_impulse_response(
            tf.ones([1, 1, self._n_bands]), self.plan.noise.window_size)
        return int(ir.shape[-1])

    def initial_state(self) -> dict:
        """The state before the first block (batch 1 tensors)."""
        k = self.n_harmonics
        state = {
            'frame_index': tf.zeros([], tf.int32),  # frames processed
            'rnn_state': self._zero_rnn_state(),
            'f0_hz': tf.zeros([1, 1, 1]),  # the last frame's controls
            'amplitudes': tf.zeros([1, 1, 1]),
            'harmonic_distribution': tf.zeros([1, 1, k]),
            'phase': tf.zeros([1, 1, k]),  # at the last frame's sample
        }
        if self.plan.noise is not None:
            state['noise_magnitudes'] = tf.zeros([1, 1, self._n_bands])
            state['noise_tail'] = tf.zeros(
                [1, self.hop_size + self.noise_ir_size - 1])
            state['harmonic_delay'] = tf.zeros([1, self.noise_delay])
        if self.convolver is not None:
            state.update(self.convolver.initial_state())
        return state

    def reset(self):
        """Starts a new stream."""
        self._state = self.initial_state()
        self._pending = []  # Buffered (f0, loudness, z) frames < one block.
        self._n_pending = 0
        self._to_skip = self.latency_samples

    # The block function -------------------------------------------------
    def step(self, f0_hz, loudness_db, z, state: dict):
        """One block: block_frames frames -> block_frames * hop_size samples.

        Args:
            f0_hz, loudness_db: [block_frames] (or [1, block_frames]).
            z: [block_frames, z_dims] (or with a batch of 1) or None.
            state: initial_state() or the state the previous step returned.

        Returns:
            (audio [block_frames * hop_size] of the stream positions
            [k * S - latency_samples, (k + 1) * S - latency_samples) for the
            k-th block (S block samples; negative positions are silence),
            new state).
        """
        if (z is None) == self.trained.uses_z:
            raise ValueError('step: z must be given if and only if the model '
                             'has an encoder.')
        inputs = {'f0_hz': f0_hz, 'loudness_db': loudness_db}
        if z is not None:
            inputs['z'] = z
        for name, x in inputs.items():
            size = tf.convert_to_tensor(x).shape.num_elements()
            expected = self.block_frames * (self.trained.z_dims or 1
                                            if name == 'z' else 1)
            if size is not None and size != expected:
                raise ValueError(f'step: {name} must have block_frames '
                                 f'({self.block_frames}) frames, got shape '
                                 f'{tf.convert_to_tensor(x).shape}.')
        return self._render(f0_hz, loudness_db, z, state, self.block_frames,
                            final=False)

    def _render(self, f0_hz, loudness_db, z, state, n_frames: int,
                final: bool):
        """n_frames new frames (+ the held end frame if final) -> audio."""
        hop, k = self.hop_size, self.n_harmonics
        frame_index = state['frame_index']
        new_state = dict(state)
        started = frame_index > 0
        if n_frames:
            z3 = None if z is None else _to_3d(z, n_frames)
            harmonic, magnitudes, rnn_state = _controls(
                self.trained.model, self.plan, _to_3d(f0_hz, n_frames),
                _to_3d(loudness_db, n_frames), z3, state['rnn_state'])
            new_state['rnn_state'] = rnn_state
            first = {key: harmonic[key][:, :1] for key in
                     ('f0_hz', 'amplitudes', 'harmonic_distribution')}
            cur = harmonic
        else:  # Only the held end frame.
            first = {key: state[key] for key in
                     ('f0_hz', 'amplitudes', 'harmonic_distribution')}
            cur = {key: v[:, :0] for key, v in first.items()}
            magnitudes = None

        # Harmonic: the intervals from the last frame to the new ones.
        frames = {}
        for key in ('f0_hz', 'amplitudes', 'harmonic_distribution'):
            prev = tf.where(started, state[key], first[key])
            parts = [prev, cur[key]]
            if final:
                parts.append((cur[key] if n_frames else prev)[:, -1:])
            frames[key] = tf.concat(parts, axis=1)
            new_state[key] = frames[key][:, -1:]
        # Before the first frame, a constant virtual interval that ends with
        # phase 0 at sample 0 (its audio is in the skipped latency).
        start_phase = _virtual_start_phase(
            first['f0_hz'], hop, self.plan.harmonic.sample_rate, k)
        phase = tf.where(started, state['phase'], start_phase)
        n_intervals = n_frames + int(final)
        harmonic_audio, new_state['phase'] = core.harmonic_synthesis(
            frequencies=frames['f0_hz'], amplitudes=frames['amplitudes'],
            harmonic_distribution=frames['harmonic_distribution'],
            n_samples=n_intervals * hop,
            sample_rate=self.plan.harmonic.sample_rate,
            amp_resample_method=self.plan.harmonic.amp_resample_method,
            initial_phase=phase, return_final_phase=True, add_endpoint=False)

        # Dry signal at positions [(F - 1) * hop - delay, ...).
        dry = harmonic_audio
        if self.plan.noise is not None:
            dry, new_state = self._add_noise(dry, magnitudes, state,
                                             new_state, n_frames, final)
        n_out = dry.shape[1]
        start = (frame_index - 1) * hop - self.noise_delay
        positions = start + tf.range(n_out)
        dry = tf.where(positions[tf.newaxis] >= 0, dry, 0.0)
        new_state['frame_index'] = frame_index + n_frames
        if self.convolver is None:
            return dry[0], new_state
        if final:  # Any length: zero-padded reverb blocks.
            s = self.block_samples
            n_blocks = -(-n_out // s)
            padded = tf.pad(dry, [[0, 0], [0, n_blocks * s - n_out]])
            wet = []
            for i in range(n_blocks):
                y, new_state = self._reverb(padded[:, i * s:(i + 1) * s],
                                            new_state)
                wet.append(y)
            wet = tf.concat(wet, axis=1)[:, :n_out]
        else:
            wet, new_state = self._reverb(dry, new_state)
        audio = self.plan.reverb.mix(dry, wet)
        return audio[0], new_state

    def _reverb(self, x, state):
        y, reverb_state = self.convolver.step(
            x, {k: state[k] for k in self.convolver.STATE_KEYS})
        return y, {**state, **reverb_state}

    def _add_noise(self, harmonic_audio, magnitudes, state, new_state,
                   n_frames: int, final: bool):
        """Filtered noise of the new frames, overlap-added with the tail."""
        hop = self.hop_size
        frame_index = state['frame_index']
        parts = [] if magnitudes is None else [magnitudes]
        if final:  # The held end frame (completes the last frame's window).
            last = (magnitudes[:, -1:] if n_frames
                    else state['noise_magnitudes'])
            parts.append(last)
        mags = tf.concat(parts, axis=1)
        n_filtered = mags.shape[1]
        new_state['noise_magnitudes'] = mags[:, -1:]
        # Frame j filters the noise of [(j - 1) * hop, (j + 1) * hop).
        start = (frame_index - 1) * hop
        length = (n_filtered + 1) * hop
        positions = start + tf.range(length)
        end = (frame_index + n_frames) * hop if final else None
        valid = positions >= 0
        if end is not None:
            valid = tf.logical_and(valid, positions < end)
        noise = tf.where(valid, core.counter_noise(start, length, NOISE_SEED),
                         0.0)[tf.newaxis]
        ir = core.frequency_impulse_response(mags, self.plan.noise.window_size)
        # Hann windows throughout: the next block (or the held end frame at
        # flush) crossfades the last segment's end.
        full = core.overlap_add_convolve(noise, ir, hop, flat_end=False)
        tail = state['noise_tail']
        full += tf.pad(tail, [[0, 0], [0, full.shape[1] - tail.shape[1]]])
        harmonic_audio = tf.concat([state['harmonic_delay'], harmonic_audio],
                                   axis=1)
        if final:
            n_out = harmonic_audio.shape[1]
            return harmonic_audio + full[:, :n_out], new_state
        n_out = n_frames * hop
        new_state['noise_tail'] = full[:, n_out:n_out + tail.shape[1]]
        new_state['harmonic_delay'] = harmonic_audio[:, n_out:]
        # full[t] is the noise output at t - noise_delay, as harmonic_audio.
        return harmonic_audio[:, :n_out] + full[:, :n_out], new_state

    # Python driver ------------------------------------------------------
    def _emit(self, audio: np.ndarray) -> np.ndarray:
        skip = min(self._to_skip, len(audio))
        self._to_skip -= skip
        return audio[skip:]

    def process(self, f0_hz, loudness_db, z=None) -> np.ndarray:
        """Frames in (any number), ready audio out (float32 1-D)."""
        f0_hz, loudness_db, z = _check_features(self.trained, f0_hz,
                                                loudness_db, z,
                                                allow_empty=True)
        self._pending.append((f0_hz, loudness_db, z))
        self._n_pending += len(f0_hz)
        outputs = []
        b = self.block_frames
        if self._n_pending >= b:
            f0_all, ld_all, z_all = self._take_pending()
            n_full = (len(f0_all) // b) * b
            for i in range(0, n_full, b):
                zi = None if z_all is None else tf.constant(z_all[i:i + b])
                audio, self._state = self._step(
                    tf.constant(f0_all[i:i + b]), tf.constant(ld_all[i:i + b]),
                    zi, self._state)
                outputs.append(self._emit(audio.numpy()))
            rest = (f0_all[n_full:], ld_all[n_full:],
                    None if z_all is None else z_all[n_full:])
            self._pending = [rest]
            self._n_pending = len(rest[0])
        if not outputs:
            return np.zeros(0, np.float32)
        return np.concatenate(outputs)

    def _take_pending(self):
        pending = self._pending
        f0 = np.concatenate([np.zeros(0, np.float32)] + [p[0] for p in pending])
        ld = np.concatenate([np.zeros(0, np.float32)] + [p[1] for p in pending])
        z = None
        if self.trained.uses_z:
            z = np.concatenate([np.zeros([0, self.trained.z_dims], np.float32)]
                               + [p[2] for p in pending])
        self._pending, self._n_pending = [], 0
        return f0, ld, z

    def flush(self) -> np.ndarray:
        """The remaining audio (the last frame held over one hop); resets.

        Raises:
            ValueError: if no frame was given since the last reset.
        """
        f0, ld, z = self._take_pending()
        if not len(f0) and int(self._state['frame_index']) == 0:
            raise ValueError('flush: no frames were processed.')
        audio, _ = self._render(
            tf.constant(f0), tf.constant(ld),
            None if z is None else tf.constant(z), self._state, len(f0),
            final=True)
        out = self._emit(audio.numpy())
        self.reset()
        return out


def _cached_streamer(trained: TrainedModel, use_reverb: bool,
                     block_frames: int) -> StreamingSynthesizer:
    """A reset StreamingSynthesizer, reused across calls (traced once).

    Kept on the TrainedModel; the key includes the reverb IR, which the
    streamer holds as a constant.
    """
    ir = get_reverb_ir(trained) if use_reverb else None
    key = ('streamer', bool(use_reverb), int(block_frames), _ir_digest(ir))
    streamer = _cached(trained, key, lambda: StreamingSynthesizer(
        trained, use_reverb, block_frames))
    streamer.reset()
    return streamer


def synthesize(trained: TrainedModel, f0_hz, loudness_db, z=None, *,
               use_reverb: bool = True,
               block_frames: Optional[int] = None) -> np.ndarray:
    """Renders f0 and loudness of any length, in blocks (bounded memory).

    Args:
        trained: From load_model.
        f0_hz: [n_frames] Hz at trained.frame_rate.
        loudness_db: [n_frames] dB.
        z: [n_frames, z_dims] for models with an encoder (compute_z), else
            None.
        use_reverb: Apply the learned room (False: dry signal,
            dereverberation). Ignored for models without reverb.
        block_frames: Frames per block (default 1000, 4 s at 250 Hz).
            Models whose decoder cannot stream (not an RnnFcDecoder) are
            rendered in one pass instead (a warning is logged).

    Returns:
        float32 audio [n_frames * hop_size], equal to synthesize_offline
        within 1e-3.
    """
    f0_hz, loudness_db, z = _check_features(trained, f0_hz, loudness_db, z)
    if not _streamable(trained.model):
        logging.warning('%s cannot stream (only RnnFcDecoder(stateless=True) '
                        'can): rendering in one pass.',
                        type(trained.model.decoder).__name__)
        return _offline(trained, f0_hz, loudness_db, z,
                        use_reverb)['audio'][0].numpy()
    # A fixed block size (a shorter input is one flush): one streamer, traced
    # once, serves every length.
    streamer = _cached_streamer(trained, use_reverb,
                                block_frames or _SYNTHESIZE_BLOCK_FRAMES)
    return np.concatenate([streamer.process(f0_hz, loudness_db, z),
                           streamer.flush()])

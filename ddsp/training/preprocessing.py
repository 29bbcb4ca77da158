"""Preprocessors: conditioning features for the networks, scaled to [0, 1].

f0 is scaled as MIDI / 127 (`scale_f0_hz`); loudness and power in dB as
dB / 80 + 1 (`scale_db`, [-80, 0] dB -> [0, 1]).

Loudness is never recomputed behind the user's back:
`F0LoudnessPreprocessor(compute_loudness=False)` (the default) uses the
`loudness_db` feature it is given (e.g. from the dataset, or edited for timbre
transfer) and raises ValueError when there is none;
`compute_loudness=True` always computes loudness from `audio` (A-weighted, the
same definition as data preparation) and ignores any `loudness_db` input.
magenta/ddsp recomputed it by default, silently replacing a provided
`loudness_db` (REFERENCE Appendix A).
"""
import gin
import tensorflow as tf

from ddsp import core
from ddsp import spectral_ops
from ddsp.training import nn

F0_RANGE = spectral_ops.F0_RANGE
DB_RANGE = spectral_ops.DB_RANGE
_MODULE = 'ddsp.training.preprocessing'


# ---------------------- Helpers -----------------------------------------------
def at_least_3d(x):
    """Adds batch then channel dims: [] -> [1, 1, 1], [t] -> [1, t, 1],
    [b, t] -> [b, t, 1]. Returns a float32 tensor."""
    x = core.tf_float32(x)
    if x.shape.rank == 0:
        x = x[tf.newaxis]
    if x.shape.rank == 1:
        x = x[tf.newaxis, :]
    if x.shape.rank == 2:
        x = x[:, :, tf.newaxis]
    return x


def scale_db(db):
    """Scales [-DB_RANGE, 0] dB to [0, 1]."""
    return core.tf_float32(db) / DB_RANGE + 1.0


def inv_scale_db(db_scaled):
    """Scales [0, 1] to [-DB_RANGE, 0] dB."""
    return (core.tf_float32(db_scaled) - 1.0) * DB_RANGE


def scale_f0_hz(f0_hz):
    """Scales Hz to MIDI / F0_RANGE ([0, 1] for MIDI 0-127; 0 Hz -> 0)."""
    return core.hz_to_midi(f0_hz) / F0_RANGE


def inv_scale_f0_hz(f0_scaled):
    """Inverse of `scale_f0_hz` (0 maps to MIDI 0, 8.18 Hz)."""
    return core.midi_to_hz(core.tf_float32(f0_scaled) * F0_RANGE)


def _resample(x, time_steps: int):
    """at_least_3d, then linear resampling to `time_steps` (if needed)."""
    x = at_least_3d(x)
    if x.shape[1] == time_steps:
        return x
    return core.resample(x, time_steps)


# ---------------------- Preprocessors -----------------------------------------
@gin.register(module=_MODULE)
class F0LoudnessPreprocessor(nn.DictLayer):
    """Resamples f0 and loudness to `time_steps` frames and scales them.

    Outputs `f0_hz`, `loudness_db` `[batch, time_steps, 1]` and their scaled
    versions `f0_scaled`, `ld_scaled` in [0, 1].

    Where loudness comes from is explicit (see the module docstring):
    `compute_loudness=False` uses the given `loudness_db` (ValueError if
    missing); `compute_loudness=True` computes it from `audio` with
    `spectral_ops.compute_loudness(audio, sample_rate, frame_rate,
    padding=padding)` (ValueError if `audio` is missing), ignoring any given
    `loudness_db`.
    """

    def __init__(self,
                 time_steps=1000,
                 frame_rate=250,
                 sample_rate=16000,
                 compute_loudness=False,
                 padding='center',
                 **kwargs):
        """Constructor.

        Args:
            time_steps: Frames of the outputs.
            frame_rate: Frame rate of computed loudness.
            sample_rate: Sample rate of `audio`.
            compute_loudness: Compute loudness from `audio` (True) or use the
                `loudness_db` input (False).
            padding: Framing of computed loudness ('center', 'same' or
                'valid', see `spectral_ops`).
            **kwargs: Other Keras layer arguments, e.g. `name`.
        """
        super().__init__(**kwargs)
        self.time_steps = time_steps
        self.frame_rate = frame_rate
        self.sample_rate = sample_rate
        self.compute_loudness = compute_loudness
        self.padding = padding

    def call(self, loudness_db=None, f0_hz=None, audio=None) -> [
            'f0_hz', 'loudness_db', 'f0_scaled', 'ld_scaled']:
        if f0_hz is None:
            raise ValueError(f'{self.name}: the `f0_hz` input is missing.')
        if self.compute_loudness:
            if audio is None:
                raise ValueError(
                    f'{self.name}: compute_loudness=True needs the `audio` '
                    'input to compute loudness from.')
            loudness_db = spectral_ops.compute_loudness(
                audio, sample_rate=self.sample_rate,
                frame_rate=self.frame_rate, padding=self.padding)
        elif loudness_db is None:
            raise ValueError(
                f'{self.name}: the `loudness_db` input is missing. Provide it, '
                'or set compute_loudness=True to compute it from `audio`.')
        f0_hz = self.resample(f0_hz)
        loudness_db = self.resample(loudness_db)
        return f0_hz, loudness_db, scale_f0_hz(f0_hz), scale_db(loudness_db)

    @staticmethod
    def invert_scaling(f0_scaled, ld_scaled):
        """(f0_scaled, ld_scaled) -> (f0_hz, loudness_db)."""
        return inv_scale_f0_hz(f0_scaled), inv_scale_db(ld_scaled)

    def resample(self, x):
        """[t], [b, t] or [b, t, 1] -> [b, time_steps, 1] (linear)."""
        return _resample(x, self.time_steps)


@gin.register(module=_MODULE)
class F0PowerPreprocessor(F0LoudnessPreprocessor):
    """Resamples and scales f0 and frame power (`pw_db`, `pw_scaled`).

    Uses the `power_db` input when given; otherwise computes power from
    `audio` with `spectral_ops.compute_power(audio, sample_rate, frame_rate,
    frame_size, padding=padding)`; ValueError when neither is given.
    """

    def __init__(self,
                 time_steps=1000,
                 frame_rate=250,
                 sample_rate=16000,
                 frame_size=64,
                 padding='center',
                 **kwargs):
        super().__init__(time_steps=time_steps, frame_rate=frame_rate,
                         sample_rate=sample_rate, padding=padding, **kwargs)
        self.frame_size = frame_size

    def call(self, f0_hz, power_db=None, audio=None) -> [
            'f0_hz', 'pw_db', 'f0_scaled', 'pw_scaled']:
        f0_hz = self.resample(f0_hz)
        if power_db is not None:
            pw_db = power_db
        elif audio is not None:
            pw_db = spectral_ops.compute_power(
                audio, sample_rate=self.sample_rate,
                frame_rate=self.frame_rate, frame_size=self.frame_size,
                padding=self.padding)
        else:
            raise ValueError(f'{self.name}: needs a `power_db` or an `audio` '
                             'input to compute power from.')
        pw_db = self.resample(pw_db)
        return f0_hz, pw_db, scale_f0_hz(f0_hz), scale_db(pw_db)

    @staticmethod
    def invert_scaling(f0_scaled, pw_scaled):
        """(f0_scaled, pw_scaled) -> (f0_hz, power_db)."""
        return inv_scale_f0_hz(f0_scaled), inv_scale_db(pw_scaled)


@gin.register(module=_MODULE)
class OnlineF0PowerPreprocessor(nn.DictLayer):
    """Computes power and/or f0 in the graph, at 16 kHz, without resampling.

    Power: `spectral_ops.compute_power(frame_size, padding)`. f0:
    `spectral_ops.PretrainedCREPE` (gradients stopped). Features are computed
    from `audio_16k` when given, else from `audio` (which must then be at
    16 kHz). The number of frames must equal
    `spectral_ops.get_framed_lengths(n_samples, frame_size, 16000 /
    frame_rate, padding)`, else ValueError: there is no silent resampling, so
    the model's frame count is what you configured.

    With `compute_f0=False`, `f0_hz` must be given (`f0_confidence` defaults
    to ones); with `compute_power=False`, `pw_db` must be given.
    """

    def __init__(self,
                 frame_rate=250,
                 frame_size=1024,
                 padding='center',
                 compute_power=True,
                 compute_f0=True,
                 crepe_saved_model_path='full',
                 viterbi=False,
                 **kwargs):
        """Constructor.

        Args:
            frame_rate: Frames per second (16000 / frame_rate must be an
                integer hop).
            frame_size: Samples per power frame.
            padding: 'center', 'same' or 'valid'.
            compute_power: Compute `pw_db` from audio (else read the input).
            compute_f0: Compute f0 with CREPE (else read the inputs).
            crepe_saved_model_path: CREPE capacity ('tiny' ... 'full') or a
                model file (see `spectral_ops.PretrainedCREPE`).
            viterbi: Viterbi-decode the CREPE f0.
            **kwargs: Other Keras layer arguments, e.g. `name`.
        """
        super().__init__(**kwargs)
        self.sample_rate = spectral_ops.CREPE_SAMPLE_RATE
        if self.sample_rate % frame_rate:
            raise ValueError(
                f'frame_rate ({frame_rate}) must divide the CREPE sample rate '
                f'({self.sample_rate}) to give an integer hop size.')
        self.frame_rate = frame_rate
        self.frame_size = frame_size
        self.hop_size = self.sample_rate // frame_rate
        self.padding = padding
        self.compute_power = compute_power
        self.compute_f0 = compute_f0
        self.viterbi = viterbi
        if compute_f0:
            if not crepe_saved_model_path:
                raise ValueError('compute_f0=True needs a CREPE model: set '
                                 'crepe_saved_model_path.')
            self.crepe_model = spectral_ops.PretrainedCREPE(
                model_size_or_path=crepe_saved_model_path,
                hop_size=self.hop_size)

    def call(self, audio, f0_hz=None, f0_confidence=None, audio_16k=None,
             pw_db=None) -> ['f0_hz', 'pw_db', 'f0_scaled', 'pw_scaled',
                             'f0_confidence']:
        if audio_16k is not None:
            audio = audio_16k
        audio = core.tf_float32(audio)
        if audio.shape.rank == 1:
            audio = audio[tf.newaxis]

        if self.compute_power:
            pw_db = spectral_ops.compute_power(
                audio, sample_rate=self.sample_rate,
                frame_rate=self.frame_rate, frame_size=self.frame_size,
                padding=self.padding)
        elif pw_db is None:
            raise ValueError(f'{self.name}: compute_power=False needs the '
                             '`pw_db` input.')

        if self.compute_f0:
            f0_hz, f0_confidence = self.crepe_model.predict_f0_and_confidence(
                audio, viterbi=self.viterbi, padding=self.padding)
            f0_hz = tf.stop_gradient(f0_hz)
            f0_confidence = tf.stop_gradient(f0_confidence)
        elif f0_hz is None:
            raise ValueError(f'{self.name}: compute_f0=False needs the '
                             '`f0_hz` input.')
        pw_db = at_least_3d(pw_db)
        f0_hz = at_least_3d(f0_hz)
        f0_confidence = (tf.ones_like(f0_hz) if f0_confidence is None else
                         at_least_3d(f0_confidence))

        outputs = {'f0_hz': f0_hz, 'pw_db': pw_db,
                   'f0_scaled': scale_f0_hz(f0_hz),
                   'pw_scaled': scale_db(pw_db),
                   'f0_confidence': f0_confidence}
        n_samples = audio.shape[1]
        if n_samples is not None:
            time_steps, _ = spectral_ops.get_framed_lengths(
                n_samples, self.frame_size, self.hop_size, self.padding)
            for key, value in outputs.items():
                if value.shape[1] is not None and value.shape[1] != time_steps:
                    raise ValueError(
                        f'{self.name}: `{key}` has {value.shape[1]} frames, '
                        f'expected {time_steps} for {n_samples} samples at '
                        f'{self.sample_rate} Hz, frame_rate {self.frame_rate}, '
                        f'frame_size {self.frame_size}, padding '
                        f'{self.padding!r}.')
        return outputs

"""Encoders: audio to latent features (z) or to f0.

`MfccTimeDistributedRnnEncoder` is the DDSP paper's z-encoder (MFCC -> GRU ->
Dense). `ResnetF0Encoder` predicts f0 from a log-mel spectrogram, for the
paper's unsupervised autoencoder (no CREPE f0 in the data).
"""
import gin
import tensorflow as tf

from ddsp import core
from ddsp import spectral_ops
from ddsp.training import nn
from ddsp.training import preprocessing

_MODULE = 'ddsp.training.encoders'


class ZEncoder(nn.DictLayer):
    """Base class of encoders returning a latent `z` [batch, time_steps, ch].

    Subclasses implement `compute_z(*inputs)`; its argument names are the
    input keys. `z` is then brought to the time resolution of the other
    conditioning: `time_steps` frames when given, else as many frames as the
    extra `f0_scaled` input (magenta/ddsp's convention, the default).
    """

    def __init__(self, input_keys=None, time_steps=None, **kwargs):
        """Constructor.

        Args:
            input_keys: Keys for `compute_z()`'s arguments (inferred from
                their names when not given).
            time_steps: Output frames. None: as many as `f0_scaled`, which is
                then read as an extra last input.
            **kwargs: Other Keras layer arguments, e.g. `name`.
        """
        input_keys = list(input_keys or self.get_argument_names('compute_z'))
        self.time_steps = time_steps
        if time_steps is None:
            input_keys.append('f0_scaled')  # Only to read the frame count.
        super().__init__(input_keys, output_keys=['z'], **kwargs)

    def call(self, *inputs, **unused_kwargs):
        inputs = list(inputs)
        if self.time_steps is None:
            time_steps = inputs.pop().shape[1]
        else:
            time_steps = self.time_steps
        z = self.compute_z(*inputs)
        return self.expand_z(z, time_steps)

    def expand_z(self, z, time_steps):
        """Adds a time axis to a 2-D z and resamples it to `time_steps`."""
        if len(z.shape) == 2:
            z = z[:, tf.newaxis, :]
        if z.shape[1] == time_steps:
            return z
        if z.shape[1] == 1:
            return tf.tile(z, [1, time_steps, 1])
        return core.resample(z, time_steps)

    def compute_z(self, *inputs):
        """Input tensors -> z [batch, (time,) ch]."""
        raise NotImplementedError


@gin.register(module=_MODULE)
class MfccTimeDistributedRnnEncoder(ZEncoder):
    """The DDSP paper's z-encoder: MFCCs -> instance norm -> RNN -> Dense.

    30 MFCCs (128 mel bins, 20-8000 Hz) at `z_time_steps` frames per 4 s of
    16 kHz audio; the FFT size and overlap for each frame count:
    63: (2048, 0.5), 125: (1024, 0.5), 250: (1024, 0.75), 500: (512, 0.75),
    1000: (256, 0.75). z is then resampled to the conditioning frames.
    """

    Z_AUDIO_SPEC = {
        63: {'fft_size': 2048, 'overlap': 0.5},
        125: {'fft_size': 1024, 'overlap': 0.5},
        250: {'fft_size': 1024, 'overlap': 0.75},
        500: {'fft_size': 512, 'overlap': 0.75},
        1000: {'fft_size': 256, 'overlap': 0.75},
    }

    def __init__(self,
                 rnn_channels=512,
                 rnn_type='gru',
                 z_dims=32,
                 z_time_steps=250,
                 sample_rate=16000,
                 **kwargs):
        """Constructor.

        Args:
            rnn_channels: RNN units.
            rnn_type: 'gru' or 'lstm'.
            z_dims: Channels of z.
            z_time_steps: 63, 125, 250, 500 or 1000 (see the class docstring).
            sample_rate: Sample rate of the audio (for the mel scale).
            **kwargs: ZEncoder arguments (`input_keys`, `time_steps`) and
                Keras layer arguments.
        """
        super().__init__(**kwargs)
        if z_time_steps not in self.Z_AUDIO_SPEC:
            raise ValueError(f'z_time_steps must be one of '
                             f'{sorted(self.Z_AUDIO_SPEC)}, got '
                             f'{z_time_steps}.')
        self.z_time_steps = z_time_steps
        self.fft_size = self.Z_AUDIO_SPEC[z_time_steps]['fft_size']
        self.overlap = self.Z_AUDIO_SPEC[z_time_steps]['overlap']
        self.sample_rate = sample_rate
        self.z_norm = nn.Normalize('instance', name='z_norm')
        self.rnn = nn.Rnn(rnn_channels, rnn_type, name='rnn')
        self.dense_out = nn.Dense(z_dims, name='dense_out')

    def compute_z(self, audio):
        mfccs = spectral_ops.compute_mfcc(
            audio, lo_hz=20.0, hi_hz=8000.0, fft_size=self.fft_size,
            mel_bins=128, mfcc_bins=30, overlap=self.overlap, pad_end=True,
            sample_rate=self.sample_rate)
        z = self.z_norm(mfccs[:, :, tf.newaxis, :])[:, :, 0, :]
        return self.dense_out(self.rnn(z))


@gin.register(module=_MODULE)
class ResnetF0Encoder(nn.DictLayer):
    """Unsupervised f0: log-mel spectrogram -> ResNet -> softmax over pitch.

    The ResNet strides frequency only; its output frames are flattened, a
    Dense layer gives `f0_bins` logits per frame, and
    `core.frequencies_softmax` turns them into the expected frequency on a
    log scale between `hz_min` and `hz_max` (differentiable). f0 is resampled
    to `time_steps` frames; outputs `f0_hz` and `f0_scaled`
    ([batch, time_steps, 1]) as the preprocessors do.
    """

    def __init__(self,
                 size='small',
                 f0_bins=128,
                 hz_min=20.0,
                 hz_max=2000.0,
                 time_steps=1000,
                 fft_size=1024,
                 overlap=0.75,
                 mel_bins=128,
                 lo_hz=20.0,
                 hi_hz=8000.0,
                 sample_rate=16000,
                 **kwargs):
        """Constructor.

        Args:
            size: ResNet size ('small', 'medium', 'large').
            f0_bins: Pitch bins of the softmax.
            hz_min, hz_max: Frequency range of the bins (log-spaced).
            time_steps: Output frames.
            fft_size, overlap: STFT of the log-mel spectrogram.
            mel_bins, lo_hz, hi_hz: Mel filterbank.
            sample_rate: Sample rate of the audio.
            **kwargs: Other Keras layer arguments, e.g. `name`.
        """
        super().__init__(**kwargs)
        self.f0_bins = f0_bins
        self.hz_min = hz_min
        self.hz_max = hz_max
        self.time_steps = time_steps
        self.fft_size = fft_size
        self.overlap = overlap
        self.mel_bins = mel_bins
        self.lo_hz = lo_hz
        self.hi_hz = hi_hz
        self.sample_rate = sample_rate
        self.resnet = nn.ResNet(size=size, name='resnet')
        self.dense_out = nn.Dense(f0_bins, name='dense_out')

    def call(self, audio) -> ['f0_hz', 'f0_scaled']:
        logmel = spectral_ops.compute_logmel(
            audio, lo_hz=self.lo_hz, hi_hz=self.hi_hz, bins=self.mel_bins,
            fft_size=self.fft_size, overlap=self.overlap, pad_end=True,
            sample_rate=self.sample_rate)
        x = self.resnet(logmel[..., tf.newaxis])  # [b, t, freq, ch]
        x = tf.reshape(x, [-1, x.shape[1] or tf.shape(x)[1],
                           x.shape[2] * x.shape[3]])
        f0_hz = core.frequencies_softmax(self.dense_out(x),
                                         depth=self.f0_bins,
                                         hz_min=self.hz_min,
                                         hz_max=self.hz_max)
        f0_hz = preprocessing.at_least_3d(f0_hz)
        if f0_hz.shape[1] != self.time_steps:
            f0_hz = core.resample(f0_hz, self.time_steps)
        return f0_hz, preprocessing.scale_f0_hz(f0_hz)

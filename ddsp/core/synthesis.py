"""Frame-rate additive synthesis: harmonic and sinusoidal synthesis from
frame-rate controls, one-shot or streaming with phase state.

The phase convention and `phase_precision` are described in
`ddsp.core.oscillators`; the fused kernel is in `ddsp.core.frame_kernel`.

Frame-rate synthesis (harmonic_synthesis, sinusoidal_synthesis,
streaming_harmonic_synthesis, harmonic_oscillator_bank). With an integer
hop = n_samples / n_intervals, sample n = j * hop + m belongs to frame
interval j. Frequencies are linearly interpolated inside the interval, so the
phase there is a closed-form quadratic in m around the interval's start
phase; start phases are accumulated over frames in float64 and wrapped, which
makes the output drift-free for any length (inside a hop the float32 phase
is off by at most ~hop * pi * 6e-8 rad). Amplitudes are interpolated with
the 'linear' or 'window' weights of `resample`. One XLA-compiled kernel
evaluates sum_k amp * sin(phase) over [batch, frames, hop, oscillators]
without materialising anything of that size, and a custom gradient recomputes
sines/cosines instead of storing them. Other resampling methods, non-integer
hops or unknown frame counts use the generic path: resample the controls to
audio rate, then `oscillator_bank`.

Endpoint rule (`add_endpoint`). True (default, as magenta/ddsp): the T frames
cover T hops and the last frame is held over the last hop. False: frame T - 1
is only the end point, the T frames cover (T - 1) hops, and synthesising
frames [0..t] then [t..T-1] (carrying the phase) equals synthesising all of
them at once: that is what block-wise streaming needs.
"""
from typing import Text, Tuple

import gin
import tensorflow as tf

from ddsp.core.frame_kernel import _MAX_FUSED_AXIS
from ddsp.core.frame_kernel import _frame_kernels  # noqa: F401 (tests use it)
from ddsp.core.frame_kernel import _run_frame_kernel
from ddsp.core.oscillators import _TWO_PI
from ddsp.core.oscillators import _check_amp_resample_method
from ddsp.core.oscillators import _check_channels
from ddsp.core.oscillators import _check_n_samples
from ddsp.core.oscillators import _check_rank
from ddsp.core.oscillators import _check_sample_rate
from ddsp.core.oscillators import _mod_2pi
from ddsp.core.oscillators import _sample_rate_oscillators
from ddsp.core.oscillators import get_phase_dtype
from ddsp.core.oscillators import normalize_harmonics
from ddsp.core.resampling import resample
from ddsp.core.utils import tf_float32

__all__ = [
    'harmonic_oscillator_bank',
    'harmonic_synthesis',
    'streaming_harmonic_synthesis',
    'sinusoidal_synthesis',
]

# Amplitude interpolations the frame kernel evaluates in closed form.
_KERNEL_METHODS = ('linear', 'window')


# Frame-rate synthesis --------------------------------------------------------
def _resample_controls(x, n_samples, method, add_endpoint):
    """`resample` under this module's endpoint rule."""
    n_frames = x.shape[1]
    if add_endpoint or n_frames is None or n_frames < 2:
        return resample(x, n_samples, method, add_endpoint=add_endpoint)
    if n_samples % (n_frames - 1) == 0:
        # Frame j at sample j * hop; the held extra hop is cropped off.
        hop = n_samples // (n_frames - 1)
        return resample(x, n_frames * hop, method)[:, :n_samples]
    # No integer hop: resample's own convention (last frame on last sample).
    return resample(x, n_samples, method, add_endpoint=False)


def _oscillator_values(x, n_osc: int, harmonic: bool):
    """Per-oscillator values: multiples 1..n_osc of x [..., 1] if harmonic."""
    if harmonic:
        return x * tf.range(1, n_osc + 1, dtype=x.dtype)
    return x


@tf.function(jit_compile=True)
def _kernel_phases(frequencies, initial_phase, n_osc: int, harmonic: bool,
                   hop: int, add_endpoint: bool, sample_rate: float):
    """Frame-kernel phase inputs from frame-rate frequencies (fused by XLA).

    Separate from the amplitudes, so that graph mode prunes the kernel's
    phase gradient when no frequency gradient is needed.

    Args: see `_synthesize`; hop: samples per frame interval.

    Returns:
        start phase [batch, J, n_osc], angular frequency (rad / sample)
        [batch, J + 1, n_osc] and final phase [batch, 1, n_osc], float32.
    """
    if add_endpoint:  # Hold the last frame over the last hop.
        frequencies = tf.concat([frequencies, frequencies[:, -1:]], axis=1)
    omegas = frequencies * (_TWO_PI / sample_rate)  # The phase dtype.
    # Exact phase advance of a linear frequency ramp over one interval,
    # accumulated in float64 and wrapped: no drift however long the signal.
    # For harmonics, k times the wrapped fundamental phase is exact mod 2 pi.
    advance = 0.5 * (hop + 1) * omegas[:, :-1] + 0.5 * (hop - 1) * omegas[:, 1:]
    if advance.dtype != tf.float64:  # phase_precision('float32'): keep the
        advance = _mod_2pi(advance)  # running sum (and its rounding) small.
    phase = tf.concat([tf.zeros_like(advance[:, :1]),
                       tf.cumsum(advance, axis=1)], axis=1)
    phase = _oscillator_values(_mod_2pi(phase), n_osc, harmonic)
    omegas = _oscillator_values(omegas, n_osc, harmonic)
    if initial_phase is not None:
        phase = _mod_2pi(phase + initial_phase)
        omegas += tf.zeros_like(initial_phase)  # Broadcast the batch.
    return (tf.cast(phase[:, :-1], tf.float32), tf.cast(omegas, tf.float32),
            tf.cast(phase[:, -1:], tf.float32))


def _common_batch(*tensors):
    """Broadcasts [batch or 1, ...] tensors to one batch size."""
    batch = tensors[0].shape[0]
    if all(t.shape[0] == batch for t in tensors) and batch is not None:
        return tensors
    batch = tf.reduce_max(tf.stack([tf.shape(t)[0] for t in tensors]))
    return [tf.ensure_shape(
        tf.broadcast_to(t, tf.concat([[batch], tf.shape(t)[1:]], 0)),
        [None] + t.shape[1:]) for t in tensors]


def _synthesize(frequencies, amplitudes, n_osc: int, harmonic: bool,
                n_samples: int, sample_rate, amp_resample_method,
                initial_phase, add_endpoint, use_angular_cumsum):
    """Oscillators from frame-rate controls.

    Args:
        frequencies: float64 Hz, [batch, n_frames, 1] if harmonic (oscillator
            k has k times that frequency), else [batch, n_frames, n_osc].
        amplitudes: float32, [batch, n_frames, n_osc or 1].
        n_osc: Number of oscillators.
        harmonic: See frequencies.
        initial_phase: None or float64 radians, [batch, 1, n_osc].
        Others: see harmonic_synthesis.

    Returns:
        (audio [batch, n_samples], final_phase [batch, 1, n_osc] float32).
    """
    n_frames = frequencies.shape[1]
    n_intervals = None
    if n_frames is not None and n_frames == amplitudes.shape[1]:
        n_intervals = n_frames if add_endpoint else n_frames - 1
    hop = n_samples // n_intervals if n_intervals else 0
    if (amp_resample_method in _KERNEL_METHODS and hop and
            n_samples % n_intervals == 0 and
            max(hop, n_osc) <= _MAX_FUSED_AXIS**3):
        phase, omegas, final_phase = _kernel_phases(
            frequencies, initial_phase, n_osc, harmonic, hop, add_endpoint,
            float(sample_rate))
        if add_endpoint:
            amplitudes = tf.concat([amplitudes, amplitudes[:, -1:]], axis=1)
        amplitudes = tf.broadcast_to(
            amplitudes, tf.concat([tf.shape(amplitudes)[:2], [n_osc]], 0))
        phase, omegas, amplitudes, final_phase = _common_batch(
            phase, omegas, amplitudes, final_phase)
        audio = _run_frame_kernel(
            phase, omegas, tf.ensure_shape(amplitudes, omegas.shape), hop,
            amp_resample_method)
        return audio, final_phase

    frequencies = _oscillator_values(frequencies, n_osc, harmonic)
    freq_env = _resample_controls(tf.cast(frequencies, tf.float32),
                                  n_samples, 'linear', add_endpoint)
    amp_env = _resample_controls(amplitudes, n_samples, amp_resample_method,
                                 add_endpoint)
    if initial_phase is not None:
        initial_phase = tf.cast(initial_phase, tf.float32)
    return _sample_rate_oscillators(freq_env, amp_env, sample_rate,
                                    initial_phase, use_angular_cumsum,
                                    sum_sinusoids=True)


def _initial_phase64(initial_phase, n_osc: int, name: str):
    if initial_phase is None:
        return None
    initial_phase = tf_float32(initial_phase)
    if initial_phase.shape.rank != 3 or initial_phase.shape[1] != 1:
        raise ValueError(f'{name} must have shape [batch, 1, {n_osc}], got '
                         f'shape {initial_phase.shape}.')
    _check_channels(initial_phase, name, (n_osc,))
    return tf.cast(initial_phase, get_phase_dtype())


def _check_frame_controls(name, x, shape_doc, channels=None):
    _check_rank(x, 3, name, shape_doc)
    if channels is not None:
        _check_channels(x, name, channels)
    if x.shape[1] is not None and x.shape[1] < 1:
        raise ValueError(f'{name} has no frames: shape {x.shape}.')


def _check_synthesis_args(n_samples, sample_rate, amp_resample_method,
                          add_endpoint, n_frames):
    _check_n_samples(n_samples)
    _check_sample_rate(sample_rate)
    _check_amp_resample_method(amp_resample_method)
    if not add_endpoint and n_frames is not None and n_frames < 2:
        raise ValueError('add_endpoint=False needs at least 2 frames, got '
                         f'{n_frames}.')


def _harmonic_synthesis(frequencies, amplitudes, harmonic_shifts,
                        harmonic_distribution, n_samples, sample_rate,
                        amp_resample_method, initial_phase, add_endpoint,
                        use_angular_cumsum, fundamental_phase=False):
    """harmonic_synthesis returning (audio, final_phase [batch, 1, K]).

    initial_phase is per harmonic [batch, 1, K], or the fundamental's
    [batch, 1, 1] if fundamental_phase.
    """
    frequencies = tf_float32(frequencies)
    amplitudes = tf_float32(amplitudes)
    harmonic_doc = '[batch, n_frames, n_harmonics]'
    _check_frame_controls('frequencies', frequencies, '[batch, n_frames, 1]',
                          (1,))
    n_harmonics = 1
    if harmonic_distribution is not None:
        harmonic_distribution = tf_float32(harmonic_distribution)
        _check_frame_controls('harmonic_distribution', harmonic_distribution,
                              harmonic_doc)
        n_harmonics = int(harmonic_distribution.shape[-1])
    if harmonic_shifts is not None:
        harmonic_shifts = tf_float32(harmonic_shifts)
        _check_frame_controls('harmonic_shifts', harmonic_shifts, harmonic_doc,
                              None if harmonic_distribution is None
                              else (n_harmonics,))
        n_harmonics = int(harmonic_shifts.shape[-1])
    _check_frame_controls('amplitudes', amplitudes, '[batch, n_frames, 1]',
                          (1, n_harmonics))
    _check_synthesis_args(n_samples, sample_rate, amp_resample_method,
                          add_endpoint, frequencies.shape[1])

    if fundamental_phase:
        initial_phase = _fundamental_to_harmonic_phase(initial_phase,
                                                       n_harmonics)
    else:
        initial_phase = _initial_phase64(initial_phase, n_harmonics,
                                         'initial_phase')

    frequencies = tf.cast(frequencies, get_phase_dtype())
    if harmonic_shifts is not None:
        frequencies = _oscillator_values(frequencies, n_harmonics, True)
        frequencies *= 1.0 + tf.cast(harmonic_shifts, get_phase_dtype())
    if harmonic_distribution is not None:
        amplitudes = amplitudes * harmonic_distribution
    return _synthesize(frequencies, amplitudes, n_harmonics,
                       harmonic_shifts is None, int(n_samples), sample_rate,
                       amp_resample_method, initial_phase, add_endpoint,
                       use_angular_cumsum)


def harmonic_synthesis(frequencies, amplitudes, harmonic_shifts=None,
                       harmonic_distribution=None, n_samples: int = 64000,
                       sample_rate: float = 16000,
                       amp_resample_method: Text = 'window',
                       use_angular_cumsum: bool = False,
                       initial_phase=None, return_final_phase: bool = False,
                       add_endpoint: bool = True):
    """Audio of a monophonic harmonic oscillator bank from frame-rate controls.

    Harmonic k (1-based) has frequency frequencies * k * (1 + shift_k) and
    amplitude amplitudes * distribution_k; frequencies are interpolated
    linearly between frames, amplitudes with `amp_resample_method`, and each
    harmonic is silent wherever it is at or above Nyquist. See the module
    docstring for the phase convention and the endpoint rule.

    Args:
        frequencies: Fundamental frequency in Hz, [batch, n_frames, 1].
        amplitudes: Overall amplitude, [batch, n_frames, 1].
        harmonic_shifts: Optional relative detuning of each harmonic,
            [batch, n_frames, n_harmonics].
        harmonic_distribution: Optional amplitude share of each harmonic,
            [batch, n_frames, n_harmonics]. Without it and without shifts
            there is a single (fundamental) oscillator.
        n_samples: Output length in samples.
        sample_rate: Samples per second.
        amp_resample_method: 'window' (default), 'linear', 'nearest' or
            'cubic' (see `resample`).
        use_angular_cumsum: Only used on the generic path (nearest/cubic
            amplitudes or a non-integer hop), see `oscillator_bank`. The
            frame kernel accumulates phase without drift regardless.
        initial_phase: Optional phase of each harmonic at sample 0 in
            radians, [batch, 1, n_harmonics].
        return_final_phase: Also return the phases for the next block.
        add_endpoint: True: the frames cover n_samples, the last frame held
            over the last hop. False: the last frame falls on sample
            n_samples (just after the output); use it to stream blocks whose
            frames overlap by one.

    Returns:
        audio [batch, n_samples], or (audio, final_phase
        [batch, 1, n_harmonics]) with return_final_phase.

    Raises:
        ValueError: on bad shapes, sample_rate, n_samples or method.
    """
    audio, final_phase = _harmonic_synthesis(
        frequencies, amplitudes, harmonic_shifts, harmonic_distribution,
        n_samples, sample_rate, amp_resample_method, initial_phase,
        add_endpoint, use_angular_cumsum)
    return (audio, final_phase) if return_final_phase else audio


def sinusoidal_synthesis(frequencies, amplitudes, n_samples: int = 64000,
                         sample_rate: float = 16000,
                         amp_resample_method: Text = 'window',
                         initial_phase=None, return_final_phase: bool = False,
                         add_endpoint: bool = True):
    """Audio of freely moving sinusoids from frame-rate controls.

    The same synthesis as `harmonic_synthesis`, with every oscillator's
    frequency given directly.

    Args:
        frequencies: Frequencies in Hz, [batch, n_frames, n_sinusoids].
        amplitudes: Amplitudes, [batch, n_frames, n_sinusoids].
        n_samples, sample_rate, amp_resample_method, add_endpoint: See
            `harmonic_synthesis`.
        initial_phase: Optional phases at sample 0 (radians),
            [batch, 1, n_sinusoids].
        return_final_phase: Also return the phases for the next block.

    Returns:
        audio [batch, n_samples], or (audio, final_phase
        [batch, 1, n_sinusoids]).
    """
    frequencies = tf_float32(frequencies)
    amplitudes = tf_float32(amplitudes)
    shape_doc = '[batch, n_frames, n_sinusoids]'
    _check_frame_controls('frequencies', frequencies, shape_doc)
    n_osc = int(frequencies.shape[-1])
    _check_frame_controls('amplitudes', amplitudes, shape_doc, (1, n_osc))
    _check_synthesis_args(n_samples, sample_rate, amp_resample_method,
                          add_endpoint, frequencies.shape[1])
    audio, final_phase = _synthesize(
        tf.cast(frequencies, get_phase_dtype()), amplitudes, n_osc, False,
        int(n_samples), sample_rate, amp_resample_method,
        _initial_phase64(initial_phase, n_osc, 'initial_phase'),
        add_endpoint, use_angular_cumsum=False)
    return (audio, final_phase) if return_final_phase else audio


def _fundamental_to_harmonic_phase(initial_phase, n_harmonics: int):
    """[batch, 1, 1] fundamental phase -> [batch, 1, n_harmonics] float64."""
    if initial_phase is None:
        return None
    ratios = tf.range(1, n_harmonics + 1, dtype=get_phase_dtype())
    return _mod_2pi(
        _initial_phase64(initial_phase, 1, 'initial_phase') * ratios)


def streaming_harmonic_synthesis(frequencies, amplitudes,
                                 harmonic_distribution=None,
                                 initial_phase=None, n_samples: int = 64000,
                                 sample_rate: float = 16000,
                                 amp_resample_method: Text = 'linear',
                                 add_endpoint: bool = True
                                 ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Harmonic synthesis of one block of a stream, carrying the phase.

    The distribution is renormalised over the harmonics below Nyquist (per
    frame); the phase state is the fundamental's phase only, since harmonic
    k's phase is k times it.

    Args:
        frequencies: Fundamental frequency in Hz, [batch, n_frames, 1].
        amplitudes: Overall amplitude, [batch, n_frames, 1].
        harmonic_distribution: [batch, n_frames, n_harmonics] or None (one
            oscillator).
        initial_phase: Fundamental phase in radians at the block's first
            sample, [batch, 1, 1]; None means 0.
        n_samples: Samples in this block.
        sample_rate: Samples per second.
        amp_resample_method: See `harmonic_synthesis`.
        add_endpoint: True (magenta/ddsp behaviour): each block holds its last
            frame. False: consecutive blocks share their boundary frame and
            the stream equals one-shot synthesis (see module docstring).

    Returns:
        (audio [batch, n_samples], final_phase [batch, 1, 1]): the
        fundamental's phase at the next block's first sample, in [0, 2*pi).
    """
    frequencies = tf_float32(frequencies)
    _check_frame_controls('frequencies', frequencies, '[batch, n_frames, 1]',
                          (1,))
    if harmonic_distribution is not None:
        harmonic_distribution = tf_float32(harmonic_distribution)
        _check_frame_controls('harmonic_distribution', harmonic_distribution,
                              '[batch, n_frames, n_harmonics]')
        harmonic_distribution = normalize_harmonics(
            harmonic_distribution, frequencies, sample_rate)
    audio, final_phase = _harmonic_synthesis(
        frequencies, amplitudes, None, harmonic_distribution, n_samples,
        sample_rate, amp_resample_method, initial_phase, add_endpoint,
        use_angular_cumsum=False, fundamental_phase=True)
    return audio, final_phase[..., :1]


@gin.configurable(module='ddsp.core')
def harmonic_oscillator_bank(frequency, amplitude_envelopes,
                             initial_phase=None, sample_rate: float = 16000,
                             use_angular_cumsum: bool = True
                             ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Harmonic oscillators from audio-rate envelopes, with phase state.

    Harmonics at or above Nyquist are silenced sample by sample.

    Args:
        frequency: Fundamental frequency in Hz, [batch, n_samples, 1].
        amplitude_envelopes: Amplitude of each harmonic,
            [batch, n_samples, n_harmonics].
        initial_phase: Fundamental phase at sample 0 in radians,
            [batch, 1, 1]; None means 0.
        sample_rate: Samples per second.
        use_angular_cumsum: Kept for compatibility with magenta/ddsp; the
            phase is always accumulated without drift.

    Returns:
        (audio [batch, n_samples], final_phase [batch, 1, 1]): the
        fundamental's phase at the sample after the last, in [0, 2*pi).
    """
    del use_angular_cumsum  # Always drift-free.
    frequency = tf_float32(frequency)
    amplitude_envelopes = tf_float32(amplitude_envelopes)
    _check_rank(frequency, 3, 'frequency', '[batch, n_samples, 1]')
    _check_channels(frequency, 'frequency', (1,))
    _check_rank(amplitude_envelopes, 3, 'amplitude_envelopes',
                '[batch, n_samples, n_harmonics]')
    _check_sample_rate(sample_rate)
    n_samples = frequency.shape[1]
    if n_samples is None:
        raise ValueError('frequency needs a static number of samples, got '
                         f'shape {frequency.shape}.')
    n_harmonics = int(amplitude_envelopes.shape[-1])
    # The frame kernel with one sample per frame (hop 1).
    audio, final_phase = _synthesize(
        tf.cast(frequency, get_phase_dtype()), amplitude_envelopes, n_harmonics,
        True, n_samples, sample_rate, 'linear',
        _fundamental_to_harmonic_phase(initial_phase, n_harmonics),
        add_endpoint=True, use_angular_cumsum=False)
    return audio, final_phase[..., :1]

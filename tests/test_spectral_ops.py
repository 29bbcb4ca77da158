"""Tests of ddsp.spectral_ops: STFT/mel/MFCC, loudness, framing, f0."""
import gin
import librosa
import numpy as np
import pytest
import tensorflow as tf

from ddsp import crepe
from ddsp import spectral_ops

RATES = (16000, 22050, 24000, 32000, 44100, 48000)
PADDINGS = ('valid', 'same', 'center')


def sine(f0, seconds, sample_rate, amplitude=0.5):
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def expected_frames(n, sample_rate, frame_rate, frame_size, padding):
    """Frame count by the documented rule, in exact integer arithmetic
    (sample_rate and frame_rate integers; frame_size in samples)."""
    if padding == 'center':
        return n * frame_rate // sample_rate + 1
    if padding == 'same':
        return -(-n * frame_rate // sample_rate)
    return (n - frame_size) * frame_rate // sample_rate + 1


# STFT, mel, MFCC -------------------------------------------------------------
@pytest.mark.parametrize('frame_size,overlap', [(2048, 0.75), (1024, 0.5),
                                                (512, 0.75), (256, 0.0)])
def test_stft_magnitudes_match_librosa(frame_size, overlap):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, 8000)).astype(np.float32)
    hop = int(frame_size * (1 - overlap))
    mag = spectral_ops.compute_mag(audio, frame_size, overlap).numpy()
    n_frames = -(-8000 // hop)
    padded = np.pad(audio, [(0, 0), (0, (n_frames - 1) * hop + frame_size
                                     - 8000)])
    expected = np.abs(librosa.stft(padded, n_fft=frame_size, hop_length=hop,
                                   center=False)).swapaxes(-1, -2)
    assert mag.shape == expected.shape == (2, n_frames, frame_size // 2 + 1)
    np.testing.assert_allclose(mag, expected, rtol=1e-3,
                               atol=1e-3 * expected.max())
    np_mag = np.abs(spectral_ops.stft_np(audio, frame_size, overlap))
    np.testing.assert_allclose(np_mag, expected, rtol=1e-4,
                               atol=1e-4 * expected.max())


@pytest.mark.parametrize('size,overlap,pad_end', [
    (512, 0.75, True), (512, 0.75, False), (300, 0.75, True),
    (256, 0.5, True), (200, 0.7, True)])  # 200 / 60: frames not in blocks.
def test_magnitude_loss_and_gradient_equals_autodiff(size, overlap, pad_end):
    rng = np.random.default_rng(3)
    target = tf.constant(rng.standard_normal([2, 3000]).astype(np.float32))
    audio = tf.constant(rng.standard_normal([2, 3000]).astype(np.float32))

    def loss_fn(target_mag, mag):
        return tf.reduce_mean(tf.abs(tf.math.log(target_mag + 1e-3)
                                     - tf.math.log(mag + 1e-3)))

    loss, grad = spectral_ops.magnitude_loss_and_gradient(
        target, audio, loss_fn, size, overlap, pad_end)
    with tf.GradientTape() as tape:
        tape.watch(audio)
        expected = loss_fn(
            tf.abs(spectral_ops.stft(target, size, overlap, pad_end)),
            tf.abs(spectral_ops.stft(audio, size, overlap, pad_end)))
    expected_grad = tape.gradient(expected, audio)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-3,
                               atol=1e-4 * np.abs(expected_grad).max())
    with pytest.raises(ValueError, match='same shape'):
        spectral_ops.magnitude_loss_and_gradient(target[:1], audio, loss_fn,
                                                 size, overlap, pad_end)
    with pytest.raises(ValueError, match='integer hop'):
        spectral_ops.magnitude_loss_and_gradient(target, audio, loss_fn,
                                                 2048, 0.9)  # hop 204.8


@pytest.mark.parametrize('length,frame_size,hop', [
    (1000, 64, 16), (1003, 64, 16), (64, 64, 16), (1000, 60, 25),
    (50, 64, 16)])
def test_block_framing_and_overlap_add_equal_tf_signal(length, frame_size,
                                                       hop):
    x = tf.random.normal([2, length])
    frames = spectral_ops.spectrograms._frame_by_blocks(x, frame_size, hop)
    expected = tf.signal.frame(x, frame_size, hop)
    np.testing.assert_array_equal(frames, expected)
    if frames.shape[-2]:
        np.testing.assert_allclose(
            spectral_ops.spectrograms._overlap_add_by_blocks(frames, hop),
            tf.signal.overlap_and_add(expected, hop), atol=1e-5)


@pytest.mark.parametrize('shape,size,overlap,pad_end', [
    ((2, 3000), 512, 0.75, True),
    ((2, 3000), 512, 0.75, False),  # Samples after the last frame: grad 0.
    ((3001,), 256, 0.5, True),
    ((2, 3000), 300, 0.75, True),   # FFT length 512 > frame size.
    ((2, 2990), 200, 0.9, True),    # Fractional hop (autodiff path).
])
def test_compute_mag_gradient_equals_autodiff(shape, size, overlap, pad_end):
    """The hand-written gradient of |STFT| equals autodiff of tf.abs(stft)."""
    rng = np.random.default_rng(2)
    audio = tf.constant(rng.standard_normal(shape).astype(np.float32))
    weights = rng.standard_normal(
        spectral_ops.compute_mag(audio, size, overlap, pad_end).shape)

    def gradient(magnitude_fn):
        with tf.GradientTape() as tape:
            tape.watch(audio)
            loss = tf.reduce_sum(magnitude_fn(audio) * weights)
        return tape.gradient(loss, audio).numpy()

    ours = gradient(lambda a: spectral_ops.compute_mag(a, size, overlap,
                                                       pad_end))
    autodiff = gradient(lambda a: tf.abs(spectral_ops.stft(a, size, overlap,
                                                           pad_end)))
    assert ours.shape == audio.shape
    np.testing.assert_allclose(ours, autodiff, rtol=1e-4,
                               atol=1e-4 * np.abs(autodiff).max())
    if not pad_end:
        hop = int(size * (1 - overlap))
        covered = ((shape[-1] - size) // hop) * hop + size
        assert np.all(ours[..., covered:] == 0) and covered < shape[-1]


def test_stft_accepts_1d_2d_and_channel_inputs():
    audio = np.random.default_rng(1).standard_normal(4000).astype(np.float32)
    s1 = spectral_ops.stft(audio, 512)
    s2 = spectral_ops.stft(audio[None], 512)
    s3 = spectral_ops.stft(audio[None, :, None], 512)
    assert s1.shape == (32, 257)  # ceil(4000 / 128)
    np.testing.assert_allclose(s2[0], s1, atol=1e-4)
    np.testing.assert_allclose(s3, s2, atol=1e-4)
    valid = spectral_ops.stft(audio, 512, pad_end=False)
    assert valid.shape == ((4000 - 512) // 128 + 1, 257)


def test_pad_end_stft_is_consistent():
    audio = np.random.default_rng(2).standard_normal((3, 5000))
    s = spectral_ops.stft(audio, 1024, 0.75, pad_end=True)
    padded = spectral_ops.pad(audio, 1024, 256, 'same')
    s_valid = spectral_ops.stft(padded, 1024, 0.75, pad_end=False)
    np.testing.assert_allclose(s, s_valid, atol=1e-4)


def test_fractional_hop_stft_matches_numpy_path():
    # overlap 0.9 at 2048: hop 204.8 samples.
    audio = np.random.default_rng(3).standard_normal(9000).astype(np.float32)
    s_tf = spectral_ops.stft(audio, 2048, 0.9).numpy()
    s_np = spectral_ops.stft_np(audio, 2048, 0.9)
    assert s_tf.shape == s_np.shape == (int(np.ceil(9000 / 204.8)), 1025)
    np.testing.assert_allclose(np.abs(s_tf), np.abs(s_np), rtol=1e-3,
                               atol=1e-3 * np.abs(s_np).max())


def test_mel_matches_librosa_htk_filterbank():
    audio = np.random.default_rng(4).standard_normal(16000).astype(np.float32)
    mel = spectral_ops.compute_mel(audio, lo_hz=0.0, hi_hz=8000.0, bins=64,
                                   fft_size=2048).numpy()
    mag = np.abs(spectral_ops.stft_np(audio, 2048, 0.75))
    bank = librosa.filters.mel(sr=16000, n_fft=2048, n_mels=64, fmin=0.0,
                               fmax=8000.0, htk=True, norm=None)
    expected = mag @ bank.T
    assert mel.shape == expected.shape == (32, 64)
    # tf.signal draws the triangles in mel, librosa in Hz: <1% apart.
    np.testing.assert_allclose(mel, expected, rtol=2e-2)
    logmel = spectral_ops.compute_logmel(audio, 0.0, 8000.0, 64, 2048)
    np.testing.assert_allclose(logmel, np.log(np.maximum(mel, 1e-5)),
                               atol=1e-4)


def test_mfcc_matches_librosa_dct():
    audio = np.random.default_rng(5).standard_normal(16000).astype(np.float32)
    mfcc = spectral_ops.compute_mfcc(audio, mfcc_bins=13).numpy()
    logmel = spectral_ops.compute_logmel(audio, lo_hz=20.0, hi_hz=8000.0,
                                         bins=128, fft_size=1024).numpy()
    expected = librosa.feature.mfcc(S=logmel.T, n_mfcc=13, norm='ortho').T
    expected[:, 0] *= np.sqrt(2.0)  # tf.signal's DC coefficient scaling.
    assert mfcc.shape == (63, 13)
    np.testing.assert_allclose(mfcc, expected, rtol=1e-3, atol=1e-3)


# Loudness, power, RMS --------------------------------------------------------
def test_loudness_of_10x_amplitude_is_20_db_more():
    quiet = sine(440, 0.5, 16000, amplitude=0.02)
    loud = 10.0 * quiet
    diff = (spectral_ops.compute_loudness(loud)
            - spectral_ops.compute_loudness(quiet)).numpy()
    np.testing.assert_allclose(diff[5:-5], 20.0, atol=0.01)


def test_loudness_is_a_weighted():
    low = spectral_ops.compute_loudness(sine(100, 0.5, 16000), n_fft=2048)
    mid = spectral_ops.compute_loudness(sine(1000, 0.5, 16000), n_fft=2048)
    diff = float(np.median(mid[10:-10]) - np.median(low[10:-10]))
    expected = float(librosa.A_weighting(1000.0) - librosa.A_weighting(100.0))
    assert expected == pytest.approx(19.1, abs=0.1)
    assert diff == pytest.approx(expected, abs=1.0)


def test_loudness_of_full_scale_sine_and_silence():
    silence = spectral_ops.compute_loudness(np.zeros(16000)).numpy()
    np.testing.assert_array_equal(silence, -80.0)
    quiet = spectral_ops.compute_loudness(np.zeros(16000), range_db=100.0)
    np.testing.assert_allclose(quiet, -100.0, atol=1e-4)


@pytest.mark.parametrize('sample_rate', RATES)
@pytest.mark.parametrize('padding', PADDINGS)
def test_loudness_tf_and_numpy_paths_agree(sample_rate, padding):
    rng = np.random.default_rng(6)
    audio = (sine(300, 0.3, sample_rate)
             + 0.05 * rng.standard_normal(int(0.3 * sample_rate)))
    audio = np.stack([audio, 0.01 * audio])
    ld_tf = spectral_ops.compute_loudness(audio, sample_rate, padding=padding)
    ld_np = spectral_ops.compute_loudness(audio, sample_rate, padding=padding,
                                          use_tf=False)
    assert isinstance(ld_np, np.ndarray)
    assert ld_tf.shape == ld_np.shape
    np.testing.assert_allclose(ld_tf, ld_np, atol=0.1)


def test_loudness_gradients_are_finite():
    audio = tf.Variable(np.concatenate([np.zeros(4000), sine(440, 0.25,
                                                             16000)])[None])
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(spectral_ops.compute_loudness(audio))
        loss += tf.reduce_mean(spectral_ops.compute_power(audio))
        loss += tf.reduce_mean(spectral_ops.compute_rms_energy(audio))
    grad = tape.gradient(loss, audio)
    assert np.all(np.isfinite(grad.numpy()))
    assert np.any(grad.numpy() != 0)


def test_rms_energy_and_power():
    audio = np.random.default_rng(7).standard_normal((2, 8000)) * 0.3
    rms = spectral_ops.compute_rms_energy(audio, 16000, 250, 512,
                                          padding='valid').numpy()
    frames = np.stack([audio[:, i * 64:i * 64 + 512]
                       for i in range((8000 - 512) // 64 + 1)], axis=1)
    np.testing.assert_allclose(rms, np.sqrt((frames**2).mean(-1)), rtol=1e-4)
    power = spectral_ops.compute_power(audio, 16000, 250, 512,
                                       padding='valid').numpy()
    np.testing.assert_allclose(power, 20 * np.log10(rms), atol=1e-3)


# Framing ---------------------------------------------------------------------
def test_get_framed_lengths_at_16khz_matches_the_reference_formulas():
    assert spectral_ops.get_framed_lengths(16000, 1024, 64, 'center') == (
        251, 17024)
    assert spectral_ops.get_framed_lengths(16000, 1024, 64, 'same') == (
        250, 249 * 64 + 1024)
    assert spectral_ops.get_framed_lengths(16000, 1024, 64, 'valid') == (
        235, 16000)
    # Fractional hop: 44.1 kHz at 250 frames/s.
    assert spectral_ops.get_framed_lengths(44100, 512, 176.4, 'same')[0] == (
        250)
    assert spectral_ops.get_framed_lengths(44100, 512, 176.4, 'center')[0] \
        == 251
    with pytest.raises(ValueError, match='too short'):
        spectral_ops.get_framed_lengths(1000, 1024, 64, 'valid')
    with pytest.raises(ValueError, match='padding'):
        spectral_ops.get_framed_lengths(1000, 1024, 64, 'full')


@pytest.mark.parametrize('padding', PADDINGS)
def test_padding_shapes_are_correct(padding):
    x = np.ones((2, 1000, 3))
    padded = spectral_ops.pad(x, 256, 64, padding=padding, axis=1)
    n_frames, length = spectral_ops.get_framed_lengths(1000, 256, 64,
                                                       padding)
    assert padded.shape == (2, length, 3)
    if padding == 'center':
        assert length == 1256
        np.testing.assert_array_equal(padded[:, :128], 0)
        np.testing.assert_array_equal(padded[:, 128:1128], 1)
    frames = tf.signal.frame(padded, 256, 64, axis=1)
    assert frames.shape[1] == n_frames


@pytest.mark.parametrize('sample_rate', RATES)
@pytest.mark.parametrize('padding', PADDINGS)
def test_frame_counts_at_every_rate(sample_rate, padding):
    for seconds in (0.21, 0.4):
        n = int(seconds * sample_rate) + 7
        audio = np.random.default_rng(8).standard_normal(n) * 0.1
        expected = expected_frames(n, sample_rate, 250, 512, padding)
        for fn in (spectral_ops.compute_loudness, spectral_ops.compute_power,
                   spectral_ops.compute_rms_energy):
            assert fn(audio, sample_rate, 250, padding=padding).shape == (
                expected,), fn.__name__
        np_loudness = spectral_ops.compute_loudness(
            audio, sample_rate, 250, padding=padding, use_tf=False)
        assert np_loudness.shape == (expected,)
        # f0: frame = 64 ms = 1024 * sample_rate / 16000 samples.
        f0_expected = expected_frames(n * 16000, sample_rate * 16000, 250,
                                      1024 * sample_rate, padding)
        f0, confidence = spectral_ops.compute_f0(
            audio, 250, padding=padding, model_capacity='tiny',
            sample_rate=sample_rate, viterbi=False)
        assert f0.shape == confidence.shape == (f0_expected,)
        assert np.all(np.isfinite(f0)) and np.all(np.isfinite(confidence))


def test_frame_counts_are_exact_for_whole_durations():
    # 4 s at 250 frames/s: 1001 'center' and 1000 'same' frames at every rate
    # (no float rounding: 44.1 kHz has hop 176.4).
    for sample_rate in RATES:
        for padding, count in (('center', 1001), ('same', 1000)):
            n_frames, _ = spectral_ops.get_framed_lengths(
                4 * sample_rate, 512, sample_rate / 250, padding)
            assert n_frames == count
    # f0 frames are 64 ms long: 985 'valid' frames in 4 s, at any rate.
    for padding, count in (('center', 1001), ('same', 1000), ('valid', 985)):
        f0, _ = spectral_ops.compute_f0(np.zeros(4 * 44100), 250,
                                        padding=padding, viterbi=False,
                                        model_capacity='tiny',
                                        sample_rate=44100)
        assert f0.shape == (count,)


def test_framing_works_with_unknown_lengths_in_graphs():
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def loudness_44k(audio):
        return spectral_ops.compute_loudness(audio, 44100, 250,
                                             padding='same')

    rng = np.random.default_rng(9)
    for n in (4410, 5000, 8821):
        audio = rng.standard_normal((1, n)).astype(np.float32)
        eager = spectral_ops.compute_loudness(audio, 44100, 250,
                                              padding='same')
        graph = loudness_44k(tf.constant(audio))
        assert graph.shape == eager.shape == (1, -(-n * 250 // 44100))
        np.testing.assert_allclose(graph, eager, atol=1e-3)
    assert loudness_44k.experimental_get_tracing_count() == 1


def test_pad_or_trim_vector_to_expected_length():
    for use_tf in (False, True):
        vector = np.arange(10.0)
        out = spectral_ops.pad_or_trim_to_expected_length(vector, 12,
                                                          use_tf=use_tf)
        np.testing.assert_array_equal(out, list(range(10)) + [0, 0])
        out = spectral_ops.pad_or_trim_to_expected_length(
            np.stack([vector, vector]), 8, use_tf=use_tf)
        assert tuple(out.shape) == (2, 8)
        out = spectral_ops.pad_or_trim_to_expected_length(
            vector, 11, pad_value=-1.0, use_tf=use_tf)
        assert float(out[-1]) == -1.0
        with pytest.raises(ValueError, match='len_tolerance'):
            spectral_ops.pad_or_trim_to_expected_length(vector, 40,
                                                        use_tf=use_tf)


# f0 --------------------------------------------------------------------------
def test_compute_f0_tracks_a_tone_at_other_sample_rates():
    f0_16k, conf_16k = spectral_ops.compute_f0(
        sine(330, 0.5, 16000), 100, model_capacity='tiny')
    for sample_rate in (22050, 44100, 48000):
        f0, conf = spectral_ops.compute_f0(
            sine(330, 0.5, sample_rate), 100, model_capacity='tiny',
            sample_rate=sample_rate)
        assert f0.shape == f0_16k.shape == (51,)
        inner = slice(5, -5)
        error = 1200 * np.log2(f0[inner] / f0_16k[inner])
        assert np.max(np.abs(error)) < 5.0, sample_rate
        np.testing.assert_allclose(conf[inner], conf_16k[inner], atol=0.05)


def test_compute_f0_batch_equals_single():
    a, b = sine(220, 0.3, 16000), sine(523, 0.3, 16000)
    f0, conf = spectral_ops.compute_f0(np.stack([a, b]), 250,
                                       model_capacity='tiny')
    f0_a, conf_a = spectral_ops.compute_f0(a, 250, model_capacity='tiny')
    assert f0.shape == (2, 76)
    np.testing.assert_allclose(f0[0], f0_a, rtol=1e-4)
    np.testing.assert_allclose(conf[0], conf_a, atol=1e-4)


def test_compute_f0_fast_mode_interpolates_to_the_requested_rate():
    # A slow vibrato (2 Hz, +-50 cents) around 440 Hz.
    t = np.arange(16000) / 16000
    phase = 2 * np.pi * np.cumsum(440 * 2**(0.5 / 12 * np.sin(
        2 * np.pi * 2 * t))) / 16000
    audio = (0.5 * np.sin(phase) + 0.2 * np.sin(2 * phase)).astype(np.float32)
    f0, conf = spectral_ops.compute_f0(audio, 250, model_capacity='tiny')
    f0_fast, conf_fast = spectral_ops.compute_f0(
        audio, 250, model_capacity='tiny', crepe_frame_rate=50)
    assert f0_fast.shape == conf_fast.shape == f0.shape == (251,)
    # Every 5th frame is a CREPE frame: identical there.
    np.testing.assert_allclose(f0_fast[::5], f0[::5], rtol=1e-4)
    inner = slice(10, -10)
    error = 1200 * np.log2(f0_fast[inner] / f0[inner])
    assert np.percentile(np.abs(error), 90) < 10.0
    # Non-divisor rates still give the exact count.
    f0_odd, _ = spectral_ops.compute_f0(audio, 250, model_capacity='tiny',
                                        crepe_frame_rate=70,
                                        padding='valid')
    assert f0_odd.shape == ((16000 - 1024) // 64 + 1,)


def test_reset_crepe_clears_the_cache():
    spectral_ops.compute_f0(np.zeros(2000), 250, model_capacity='tiny')
    model = crepe.get_model('tiny')
    spectral_ops.reset_crepe()
    assert crepe.get_model('tiny') is not model


@pytest.mark.parametrize('kwargs,argument', [
    (dict(audio=np.zeros((2, 3, 1000))), 'audio'),
    (dict(audio=np.zeros(500), padding='valid'), 'too short'),
    (dict(model_capacity='huge'), 'model_capacity'),
    (dict(frame_rate=0), 'frame_rate'),
    (dict(frame_rate=-250), 'frame_rate'),
    (dict(sample_rate=0), 'sample_rate'),
    (dict(crepe_frame_rate=0), 'crepe_frame_rate'),
    (dict(padding='full'), 'padding'),
    (dict(precision='float16'), 'precision'),
])
def test_compute_f0_validates_its_inputs(kwargs, argument):
    call = dict(audio=np.zeros(4000), frame_rate=250, model_capacity='tiny')
    call.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        spectral_ops.compute_f0(**call)


@pytest.mark.parametrize('fn', [spectral_ops.compute_loudness,
                                spectral_ops.compute_power,
                                spectral_ops.compute_rms_energy])
def test_frame_features_validate_their_inputs(fn):
    with pytest.raises(ValueError, match='audio'):
        fn(np.zeros((2, 2, 100)))
    with pytest.raises(ValueError, match='frame_rate'):
        fn(np.zeros(1000), 16000, 0)
    with pytest.raises(ValueError, match='sample_rate'):
        fn(np.zeros(1000), -16000, 250)
    with pytest.raises(ValueError, match='too short'):
        fn(np.zeros(100), padding='valid')
    with pytest.raises(ValueError, match='padding'):
        fn(np.zeros(1000), padding='centre')


def test_spectral_features_validate_their_inputs():
    with pytest.raises(ValueError, match='audio'):
        spectral_ops.compute_mag(np.zeros((2, 2, 2, 100)))
    with pytest.raises(ValueError, match='overlap'):
        spectral_ops.compute_mag(np.zeros(4096), overlap=1.0)
    with pytest.raises(ValueError, match='too short'):
        spectral_ops.compute_mag(np.zeros(100), pad_end=False)
    with pytest.raises(ValueError, match='hi_hz'):
        spectral_ops.compute_mel(np.zeros(4096), hi_hz=9000.0)


def test_functions_are_gin_registered():
    @gin.configurable
    def consumer(fn=None):
        return fn

    with gin.unlock_config():
        gin.parse_config([
            'consumer.fn = @ddsp.spectral_ops.compute_loudness'])
    try:
        loudness = consumer()
        np.testing.assert_allclose(loudness(np.zeros(1600)), -80.0)
    finally:
        gin.clear_config()
    for name in ('compute_mag', 'compute_mel', 'compute_logmag',
                 'compute_logmel', 'compute_mfcc', 'compute_f0'):
        with gin.unlock_config():
            gin.parse_config([f'consumer.fn = @ddsp.spectral_ops.{name}'])
        try:
            fn = consumer()
            assert fn.__name__ == name
            assert getattr(fn, '__wrapped__', fn) is getattr(spectral_ops,
                                                             name)
        finally:
            gin.clear_config()


# PretrainedCREPE -------------------------------------------------------------
@pytest.mark.parametrize('padding', PADDINGS)
def test_pretrained_crepe_matches_compute_f0(padding):
    audio = np.stack([sine(250, 0.4, 16000), sine(600, 0.4, 16000)])
    model = spectral_ops.PretrainedCREPE('tiny', hop_size=160)
    f0, confidence = model.predict_f0_and_confidence(audio, padding=padding)
    n_frames, _ = spectral_ops.get_framed_lengths(6400, 1024, 160, padding)
    assert f0.shape == confidence.shape == (2, n_frames)
    f0_ref, conf_ref = spectral_ops.compute_f0(
        audio, 100, viterbi=False, padding=padding, model_capacity='tiny')
    np.testing.assert_allclose(f0, f0_ref, rtol=1e-3)
    np.testing.assert_allclose(confidence, conf_ref, atol=1e-3)


def test_pretrained_crepe_viterbi_matches_numpy_viterbi():
    bins = np.concatenate([np.full(20, 150), np.full(3, 210),
                           np.full(20, 150), np.linspace(150, 100, 20)])
    index = np.arange(360)
    acts = 0.01 + 0.9 * np.exp(-0.5 * ((index - bins[:, None]) / 1.5)**2)
    model = spectral_ops.PretrainedCREPE('tiny')
    path = model.viterbi_decode(tf.constant(acts[None], tf.float32))
    np.testing.assert_array_equal(path[0], crepe.viterbi_path(acts))
    f0, _ = model.activations_to_f0_and_confidence(acts, path[0])
    np.testing.assert_allclose(f0, crepe.decode(acts, viterbi=True)[0],
                               rtol=1e-4)


def test_pretrained_crepe_in_a_traced_function():
    model = spectral_ops.PretrainedCREPE('tiny')

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def f0_fn(audio):
        return model.predict_f0_and_confidence(audio, viterbi=True)

    for n in (3200, 4800):
        f0, confidence = f0_fn(tf.constant(sine(440, n / 16000, 16000)[None]))
        assert f0.shape == (1, n // 160 + 1)
        assert np.all(np.isfinite(f0.numpy()))
    assert f0_fn.experimental_get_tracing_count() == 1


def test_pretrained_crepe_loads_weight_files_and_rejects_unknown_names():
    model = spectral_ops.PretrainedCREPE(str(crepe.weights_path('tiny')))
    assert model.core_model.get_layer('conv1').kernel.shape == (512, 1, 128)
    audio = sine(440, 0.2, 16000)
    f0, _ = model.predict_f0_and_confidence(audio)
    f0_ref, _ = spectral_ops.PretrainedCREPE(
        'tiny').predict_f0_and_confidence(audio)
    np.testing.assert_allclose(f0, f0_ref, rtol=1e-5)
    with pytest.raises(ValueError, match='model_size_or_path'):
        spectral_ops.PretrainedCREPE('enormous')

"""Inference with trained models: loading, whole-file and streaming synthesis.

`load_model(model_dir)` restores a `ddsp_run` save_dir. `synthesize` renders
f0 and loudness of any length (minutes) block by block with the
`StreamingSynthesizer`, in bounded memory; `synthesize_offline` renders the
whole sequence in one pass (the reference the stream is tested against: both
agree within 1e-3).

Streaming design (batch 1, hop H samples per frame, block of B frames):
* Decoder: the RnnFcDecoder is built with `stateless=True` (same variables as
  the stateful decoder it was trained as) and its RNN state is carried.
* Harmonic synthesizer: frame j sits at sample j * H; the samples between
  frames j and j + 1 need both, so a block's frames render the interval
  before them, from the previous block's last frame (kept in the state), with
  the oscillator phases carried: one frame of latency.
* Filtered noise: the noise is `core.counter_noise` (a function of the
  absolute sample index), the same in both paths. Each frame's windowed noise
  segment is filtered with its own impulse response (as `core.fft_convolve`
  does) and overlap-added into a tail buffer carried to the next block. The
  filters are linear phase (centred), so the dry signal is delayed by half
  the filter length: latency_samples = H + W // 2.
* Reverb: uniformly partitioned convolution (overlap-save, one FFT of each
  IR partition made once, a frequency-domain delay line of past blocks).
* The end (`flush`): the last frame is held over one more hop, as the
  synthesizers do with `add_endpoint=True`, so the stream is exactly
  n_frames * H samples long.

The code lives in three modules; the public API is re-exported here:

* `model`: `TrainedModel`, `load_model` and the input checks.
* `offline`: the synthesis plan, `synthesize_offline`, the reverb helpers
  (`get_reverb_ir`, `apply_reverb`) and `compute_z`.
* `streaming`: `StreamingSynthesizer` and `synthesize`.
"""
from ddsp.training.inference.model import TrainedModel  # noqa: F401
from ddsp.training.inference.model import load_model  # noqa: F401
from ddsp.training.inference.offline import NOISE_SEED  # noqa: F401
from ddsp.training.inference.offline import apply_reverb  # noqa: F401
from ddsp.training.inference.offline import compute_z  # noqa: F401
from ddsp.training.inference.offline import get_reverb_ir  # noqa: F401
from ddsp.training.inference.offline import synthesize_offline  # noqa: F401
from ddsp.training.inference.streaming import DEFAULT_BLOCK_FRAMES  # noqa: F401
from ddsp.training.inference.streaming import StreamingSynthesizer  # noqa: F401
from ddsp.training.inference.streaming import synthesize  # noqa: F401

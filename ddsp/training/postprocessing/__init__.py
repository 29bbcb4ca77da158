"""Post-processing of f0 / loudness features (numpy in, numpy out).

* Note detection (`detect_notes`) from loudness and CREPE confidence.
* A quantile transform (`QuantileTransformer`, numpy only, JSON-serialisable)
  and `fit_quantile_transform`, which maps note-on loudness of one recording
  onto the note-on loudness distribution of a training set.
* Dataset statistics (`compute_dataset_statistics` for a data provider,
  `dataset_statistics_from_arrays` for plain arrays), stored as JSON with
  `save_dataset_statistics` / `load_dataset_statistics`.
* Tuning (`get_tuning_factor`, `auto_tune`) and the timbre-transfer
  "automatic adjustments" shared by the CLI and the notebook
  (`shift_f0_to_register`, `normalize_loudness`, `adjust_features`).

The dataset statistics JSON schema (`STATS_FORMAT`, version `STATS_VERSION`)
is described in `ddsp.training.postprocessing.dataset_statistics`.

The code lives in topic modules, re-exported here so that
`ddsp.training.postprocessing.X` keeps working:

* `notes`: array helpers, `smooth`, `detect_notes`, `QuantileTransformer`,
  `fit_quantile_transform`.
* `dataset_statistics`: `infer_padding`, computing, saving and loading the
  dataset statistics.
* `f0_tuning`: tuning, key inference, auto-tune, and the timbre-transfer
  adjustments (`shift_f0_to_register`, `normalize_loudness`,
  `adjust_features`).
"""
from ddsp import core  # noqa: F401
from ddsp import spectral_ops  # noqa: F401
from ddsp.training.postprocessing.notes import ArrayLike  # noqa: F401
from ddsp.training.postprocessing.notes import detect_notes  # noqa: F401
from ddsp.training.postprocessing.notes import fit_quantile_transform  # noqa: F401
from ddsp.training.postprocessing.notes import QuantileTransformer  # noqa: F401
from ddsp.training.postprocessing.notes import smooth  # noqa: F401
from ddsp.training.postprocessing.notes import _as_quantile_transformer  # noqa: F401
from ddsp.training.postprocessing.notes import _bool_array  # noqa: F401
from ddsp.training.postprocessing.notes import _check_same_shape  # noqa: F401
from ddsp.training.postprocessing.notes import _float_array  # noqa: F401
from ddsp.training.postprocessing.notes import _hz_to_midi  # noqa: F401
from ddsp.training.postprocessing.notes import _midi_to_hz  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import compute_dataset_statistics  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import DATASET_STATISTICS_FILE  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import dataset_statistics_from_arrays  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import infer_padding  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import load_dataset_statistics  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import save_dataset_statistics  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import STATS_FORMAT  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import STATS_VERSION  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import _as_examples  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import _feature_stats  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import _json_float  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import _QUANTILE_KEYS  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import _STAT_FEATURES  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import _STAT_NAMES  # noqa: F401
from ddsp.training.postprocessing.dataset_statistics import _to_json  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import adjust_features  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import auto_tune  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import CHROMATIC_SCALE  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import dataset_quantile_transform  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import get_tuning_factor  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import infer_key  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import KEY_NAMES  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import MAJOR_SCALE  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import MAX_MIDI  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import normalize_loudness  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import shift_f0  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import shift_f0_to_register  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import _nearest_deviation  # noqa: F401
from ddsp.training.postprocessing.f0_tuning import _zscore  # noqa: F401

__all__ = [
    'STATS_FORMAT',
    'STATS_VERSION',
    'DATASET_STATISTICS_FILE',
    'MAX_MIDI',
    'KEY_NAMES',
    'MAJOR_SCALE',
    'CHROMATIC_SCALE',
    'smooth',
    'detect_notes',
    'QuantileTransformer',
    'fit_quantile_transform',
    'infer_padding',
    'dataset_statistics_from_arrays',
    'compute_dataset_statistics',
    'save_dataset_statistics',
    'load_dataset_statistics',
    'get_tuning_factor',
    'infer_key',
    'auto_tune',
    'shift_f0',
    'shift_f0_to_register',
    'normalize_loudness',
    'adjust_features',
]

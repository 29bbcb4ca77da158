"""Data preparation: audio files -> TFRecord datasets (`ddsp_prepare_tfrecord`).

Modules: `audio_io` (reading and checking audio), `dataset_metadata` (the
metadata and statistics JSON written beside the shards), `prepare_tfrecord_lib`
(the Apache Beam pipeline) and `ddsp_prepare_tfrecord` (the console script).
Nothing is imported here, so `import ddsp.training.data_preparation` stays
light and Apache Beam is only needed by the pipeline itself.
"""

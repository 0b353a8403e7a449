"""The dataset (rules build_turns, segment, dataset_stats): messages -> turns -> axolotl `input_output`
segments fitted to `sequence_len`, and the stats a person reads."""

"""ScaNN indexer: embeddings of every vocabulary item -> a ScaNN index, with its recall checked against exact
search. `index_lib` holds the algorithm, `executor` the thin TFX adapter, `component` the spec."""

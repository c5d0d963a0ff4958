"""Beam transforms and model stages, by concern: core (records, the stage registry, model
handler, threads, artifacts), ingest (read, fetch, decode), stages (one module per model
stage), knowledge (lexicon, word vectors, calibration), output (write, backfill, runs)."""

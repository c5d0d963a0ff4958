"""Crash-safe output the job owns: staged Parquet shards, run manifests, the lock, backfill."""

"""The publication engine: what a run publishes into serving.duckdb and how (engine.py: versioned and snapshot
marts, the audit, the atomic file swap; evidence.py: the serving evidence view). No Dagster here: the
Dagster asset that calls it is orchestration/publish.py."""

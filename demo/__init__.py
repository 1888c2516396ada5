"""The demo data generator: an after-sales organisation simulated day by day (docs/demo_data.md); not part of
the production packages, used by `cli demo`, `make run` and the benchmarks."""

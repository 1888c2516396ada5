"""Dagster orchestration of ServiceScore: one domain module per stage, gathered in definitions.py."""

import warnings

# single-run backfill policies are "beta" in this Dagster; they are what makes a day or month range one run
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy`")

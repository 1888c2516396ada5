"""Settings and their validation, apart from the Dagster wiring: the appraisal settings seeds (indicators.py) and
the operations settings file (operations.py)."""

"""The quality gate across runs: has the latest evaluation of any blocking check on these assets failed?

Inside one run Dagster's blocking checks already stop downstream steps. Across runs they do not: a run that
only publishes (or rebuilds part of the graph) would publish marts whose blocking check failed in an earlier
run. The publish step calls `latest_blocking_failures` and refuses while the list is not empty; the failure
stays in force until the check is evaluated again and passes.

Which checks are blocking comes from the definitions the caller passes (their public `check_specs`), so this
module imports no code location. The check history is Dagster's own record of check executions (the
instance's event log storage). Dagster 1.13 exports no public enum of execution statuses: they are compared by
their stored names, and executions that never completed (planned in a run that stopped before the check ran)
are skipped while walking back to the latest completed one.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, AssetsDefinition, DagsterInstance

# Dagster's stored status of a check execution that completed: passed or failed (the other one is PLANNED)
SUCCEEDED, FAILED = "SUCCEEDED", "FAILED"
COMPLETED = frozenset({SUCCEEDED, FAILED})
HISTORY_PAGE = 20


def blocking_check_keys(asset_keys: Iterable[AssetKey], definitions: Iterable[AssetsDefinition]) -> list[AssetCheckKey]:
    """The blocking checks that `definitions` (assets with their checks, asset checks) define on these assets."""
    wanted = set(asset_keys)
    keys = {
        spec.key
        for definition in definitions
        for spec in definition.check_specs
        if spec.blocking and spec.asset_key in wanted
    }
    return sorted(keys, key=lambda k: (k.asset_key.to_user_string(), k.name))


def latest_completed_execution(instance: DagsterInstance, key: AssetCheckKey):  # noqa: ANN201 - Dagster's record
    """The newest execution of the check that completed (passed or failed), or None."""
    storage = instance.event_log_storage
    cursor = None
    while True:
        page = storage.get_asset_check_execution_history(key, limit=HISTORY_PAGE, cursor=cursor)
        for record in page:
            if record.status.value in COMPLETED:
                return record
        if len(page) < HISTORY_PAGE:
            return None
        cursor = page[-1].id


def latest_blocking_failures(
    instance: DagsterInstance, asset_keys: Iterable[AssetKey], definitions: Iterable[AssetsDefinition]
) -> list[str]:
    """'<asset>:<check> failed in run <run id>' for every blocking check on `asset_keys` whose latest
    completed evaluation failed. A check never evaluated does not count as failed."""
    failures = []
    for key in blocking_check_keys(asset_keys, definitions):
        record = latest_completed_execution(instance, key)
        if record is None or record.status.value != FAILED:
            continue
        evaluation = record.evaluation
        if evaluation is not None and (evaluation.blocking is False or evaluation.severity == AssetCheckSeverity.WARN):
            continue  # a warning, or evaluated while the check was not blocking: Dagster does not block
        failures.append(f"{key.asset_key.to_user_string()}:{key.name} failed in run {record.run_id}")
    return failures

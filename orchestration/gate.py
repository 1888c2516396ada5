"""The quality gate across runs: has the latest evaluation of any blocking check on these assets failed?

Inside one run Dagster's blocking checks already stop downstream steps. Across runs they do not: a run that
only publishes (or rebuilds part of the graph) would publish marts whose blocking check failed in an earlier
run. The publish step calls `latest_blocking_failures` and refuses while the list is not empty; the failure
stays in force until the check is evaluated again and passes.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, DagsterInstance
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
    AssetCheckExecutionRecordStatus,
)


def blocking_check_keys(asset_keys: Iterable[AssetKey], asset_graph=None) -> list[AssetCheckKey]:  # noqa: ANN001
    """The blocking checks defined on these assets (the code location's graph unless one is given)."""
    if asset_graph is None:
        from orchestration.definitions import defs

        asset_graph = defs.resolve_asset_graph()
    wanted = set(asset_keys)
    return sorted(
        (k for k in asset_graph.asset_check_keys if k.asset_key in wanted and asset_graph.get_check_spec(k).blocking),
        key=lambda k: (k.asset_key.to_user_string(), k.name),
    )


def latest_blocking_failures(instance: DagsterInstance, asset_keys: Iterable[AssetKey], asset_graph=None) -> list[str]:  # noqa: ANN001
    """'<asset>:<check> failed in run <run id>' for every blocking check on `asset_keys` whose latest
    completed evaluation failed. A check never evaluated does not count as failed."""
    failures = []
    storage = instance.event_log_storage
    for key in blocking_check_keys(asset_keys, asset_graph):
        history = storage.get_asset_check_execution_history(
            key, limit=1, status=set(COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES)
        )
        if history and history[0].status == AssetCheckExecutionRecordStatus.FAILED:
            record = history[0]
            evaluation = record.evaluation
            if evaluation is not None and (
                evaluation.blocking is False or evaluation.severity == AssetCheckSeverity.WARN
            ):
                continue  # a warning, or evaluated while the check was not blocking: Dagster does not block
            failures.append(f"{key.asset_key.to_user_string()}:{key.name} failed in run {record.run_id}")
    return failures

"""Shared fixtures: every test gets its own data folder (warehouse, serving file, landing, Dagster home); the
fast tier is kept free of dbt and pipeline runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ingestion.organisation import OrganisationSettings
from ingestion.paths import DataDir

# tests that run dbt directly get the default organisation clock, as the pipeline's dbt step passes it
# (orchestration.resources.WarehouseResource.dbt_env); a pipeline run sets its own for its dbt step
for _name, _value in OrganisationSettings().dbt_env().items():
    os.environ.setdefault(_name, _value)
# and one as-of date (dim_customers' warranty status; var('as_of_date') still wins): without it two runs that
# compare their content differ when midnight of the organisation's zone falls between them
TEST_AS_OF_DATE = "2026-07-01"
os.environ.setdefault("SERVICESCORE_AS_OF_DATE", TEST_AS_OF_DATE)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataDir:
    root = tmp_path / "data"
    monkeypatch.setenv("SERVICESCORE_DATA_DIR", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    return DataDir(root).ensure()


# --- tiers: `make test-fast` runs the tests marked neither `dbt` nor `slow` -----------------------------------
# The markers are declared in pyproject.toml. While a test of the fast tier runs (its fixtures included, module
# ones too), starting dbt or a pipeline run is refused and fails the test, naming the marker it needs: a new test
# that builds cannot land in the fast tier unnoticed. Processes are checked by an audit hook (PEP 578) on
# subprocess starts, which replaces nothing of the stack; the in-process pipeline by replacing
# `orchestration.cli.run_pipeline` while a fast-tier test runs, and only then.
TIER_MARKERS = ("dbt", "slow")
_UNDO = pytest.StashKey[pytest.MonkeyPatch]()


class TierRefusal(RuntimeError):
    """A test of the fast tier started dbt or a pipeline run."""


class _FastTier:
    item: pytest.Item | None = None  # the fast-tier test running now, None in the marked tiers
    refused: list[str] = []


def _marker_for(argv: object) -> tuple[str, str] | None:
    """(marker, what) for a process that runs dbt (also through a wrapper that is given the dbt executable) or
    a pipeline (`cli run` / `cli backfill`, a mapped export's pipeline, the benchmark), else None."""
    args = argv.split() if isinstance(argv, str | bytes) else list(argv)
    words = [os.fsdecode(a) for a in args]
    if any(Path(w).name == "dbt" for w in words):
        return "dbt", "dbt: " + " ".join(words)[:300]
    if (
        ("orchestration.cli" in words and {"run", "backfill"} & set(words))
        or "orchestration.export_pipeline" in words
        or any(w.endswith("benchmarks/run.py") for w in words)
    ):
        return "slow", "a pipeline run: " + " ".join(words)[:300]
    return None


def _refuse(marker: str, what: str) -> None:
    item = _FastTier.item
    message = (
        f"{item.nodeid if item else 'a fast-tier test'} has no tier marker but started {what}\n"
        f"mark it @pytest.mark.{marker} (or `pytestmark = pytest.mark.{marker}` for its module) so that "
        f"`make test-fast` leaves it out"
    )
    _FastTier.refused.append(message)
    raise TierRefusal(message)


def _audit(event: str, args: tuple) -> None:
    if event == "subprocess.Popen" and _FastTier.item is not None and (found := _marker_for(args[1])):
        _refuse(*found)


sys.addaudithook(_audit)


def _refused_pipeline(*args: object, **kwargs: object) -> None:
    _refuse("slow", "a pipeline run (orchestration.cli.run_pipeline)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    if not any(item.get_closest_marker(name) for name in TIER_MARKERS):
        _FastTier.item, _FastTier.refused = item, []
        patch = pytest.MonkeyPatch()
        patch.setattr("orchestration.cli.run_pipeline", _refused_pipeline)
        item.stash[_UNDO] = patch
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if (
        call.excinfo is not None
        and call.excinfo.errisinstance(TierRefusal)
        and str(call.excinfo.value) in _FastTier.refused
    ):
        _FastTier.refused.remove(str(call.excinfo.value))  # this phase's report shows it already
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    try:
        result = yield
    finally:
        if (patch := item.stash.get(_UNDO, None)) is not None:
            patch.undo()
        refused, _FastTier.item, _FastTier.refused = _FastTier.refused, None, []
    if refused:  # also when the refusal was caught on the way, as a Dagster step failure or by pytest.raises
        pytest.fail("\n".join(refused), pytrace=False)
    return result

"""What an auditor sees in the Dagster UI, checked in a real headless Chromium (Debian's, driven by Playwright).

The whole graph runs on the hand-made fixture (as in test_pipeline.py); then `dagster-webserver` serves the same
DAGSTER_HOME on a free loopback port. The rendered pages must show the lineage from the tickets feed through the
dbt models to the publication, and the result of the last run's Great Expectations check on the KPI mart.
Screenshots go to <data dir>/reports/ui/. Skips, saying why, only when no Chromium can be found or started
(`make browser` / scripts/install_browser.sh installs it).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from ingestion.paths import REPO_ROOT, DataDir

pytestmark = [pytest.mark.slow, pytest.mark.browser]

FIXTURE = Path(__file__).parent / "fixtures" / "handmade" / "landing"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# the lineage an auditor follows, from the feed to the published appraisal
LINEAGE = [
    "raw/tickets",
    "stg_tickets__tickets",
    "fct_service_tickets",
    "int_kpi_monthly_sums",
    "kpi_technician_monthly",
    "serving/publication",
]
WEBSERVER_TIMEOUT = 240
PAGE_TIMEOUT_MS = 120_000


def chromium_path() -> str | None:
    for candidate in (os.environ.get("SERVICESCORE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium at /usr/bin/chromium (install it with `make browser`; apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - playwright is in the dev extras
        pytest.skip(f"playwright is not installed: {exc}")
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - any launch failure means: no usable browser here
            pytest.skip(f"{path} does not start: {exc}")
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def ui(browser, tmp_path_factory: pytest.TempPathFactory):
    """The pipeline on the fixture, then the UI on the same Dagster home; yields (base url, data dir)."""
    root = tmp_path_factory.mktemp("ui") / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv("SERVICESCORE_DATA_DIR", str(root))
    mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    paths = DataDir(root).ensure()
    shutil.copytree(FIXTURE, paths.landing, dirs_exist_ok=True)
    from orchestration.cli import prepare_home, run_pipeline, summarize

    prepare_home(paths)
    results = run_pipeline(paths)
    text, ok = summarize(results)
    assert ok, text
    build_run_id = results[-1].run_id

    port = free_port()
    log = (paths.reports / "ui_webserver.log").open("w")
    env = {
        **os.environ,
        "SERVICESCORE_DATA_DIR": str(root),
        "DAGSTER_HOME": str(paths.dagster_home),
        "DO_NOT_TRACK": "1",
        "PYTHONUNBUFFERED": "1",
    }
    webserver = Path(sys.executable).parent / "dagster-webserver"
    proc = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_code_location(base, proc, paths.reports / "ui_webserver.log")
        yield base, paths, build_run_id
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        mp.undo()


def wait_for_code_location(base: str, proc: subprocess.Popen, log: Path) -> None:
    """Until the webserver answers and the servicescore code location is loaded."""
    query = (
        b'{"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus '
        b'locationOrLoadError { __typename } } } } }"}'
    )
    deadline = time.monotonic() + WEBSERVER_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            req = urllib.request.Request(f"{base}/graphql", data=query, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                last = resp.read().decode()
            if '"loadStatus":"LOADED"' in last.replace(" ", ""):
                if '"RepositoryLocation"' not in last:
                    raise AssertionError(f"code location failed to load: {last}")
                return
        except OSError as exc:
            last = str(exc)
        time.sleep(1)
    raise AssertionError(f"dagster-webserver not ready after {WEBSERVER_TIMEOUT} s: {last}")


def open_page(browser, url: str, width: int = 1600, height: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(url, wait_until="domcontentloaded")
    page.locator("[aria-label='Dagster']").first.wait_for(state="attached")  # the app has rendered
    page.wait_for_timeout(3000)
    skip = page.get_by_role("button", name="Skip")  # the one-time "join the community" dialog
    if skip.count():
        skip.first.click()
    return page


def upstream_edges(base: str) -> dict[str, set[str]]:
    """Cross-check through GraphQL: each lineage asset's direct upstream keys."""
    query = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"
    req = urllib.request.Request(
        f"{base}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        nodes = json.loads(resp.read())["data"]["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]} for n in nodes}


def test_lineage_from_the_tickets_feed_to_the_publication(browser, ui):
    """The global lineage page filtered to the auditor's path, groups expanded: every asset of the path is
    drawn as a full node (name, latest event, check summary)."""
    base, paths, build_run_id = ui
    out = paths.reports / "ui"
    out.mkdir(parents=True, exist_ok=True)
    selection = " or ".join(f'key:"{k}"' for k in LINEAGE)
    page = open_page(browser, f"{base}/asset-groups~{urllib.parse.quote(selection, safe='')}/", 2000, 800)
    try:
        page.get_by_text("ingestion", exact=True).first.wait_for(state="visible")
        tree_toggle = page.locator("[aria-label='panel_show_right']")
        if tree_toggle.count():
            tree_toggle.first.click()  # hide the asset tree: more room for the graph
        page.keyboard.press("Alt+e")  # expand all groups
        page.wait_for_timeout(1500)
        for _ in range(4):  # zoom in until the nodes show their full names
            if page.get_by_text("stg_tickets__tickets", exact=True).count():
                break
            page.locator("[aria-label='zoom_in']").first.click()
            page.wait_for_timeout(1000)
        for key in LINEAGE:
            page.get_by_text(key.split("/")[-1], exact=True).first.wait_for(state="visible")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "lineage_tickets_to_publication.png"))
        text = page.inner_text("body")
    finally:
        page.close()
    for group in ("ingestion", "staging", "marts", "publish"):
        assert group in text
    assert text.count("Asset checks") >= len(LINEAGE)
    edges = upstream_edges(base)
    for upstream, downstream in zip(LINEAGE, LINEAGE[1:], strict=False):
        assert upstream in edges[downstream], (upstream, downstream)


def test_check_results_of_the_last_run_are_visible(browser, ui):
    """The checks tab of kpi_technician_monthly: the blocking GX check passed in the last build run."""
    base, paths, build_run_id = ui
    out = paths.reports / "ui"
    out.mkdir(parents=True, exist_ok=True)
    page = open_page(browser, f"{base}/assets/kpi_technician_monthly?view=checks&checkDetail=gx_kpi_technician_monthly")
    try:
        page.get_by_text("Evaluation result").first.wait_for(state="visible")
        page.get_by_text(build_run_id).first.wait_for(state="visible")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "checks_kpi_technician_monthly.png"))
        text = page.inner_text("body")
    finally:
        page.close()
    assert "This is a blocking asset check" in text.replace("\n", " ")
    result = text[text.index("Evaluation result") :]
    assert result.split()[2] == "Passed", result[:200]  # the value under "Evaluation result"
    assert "0 error and 0 warning expectations failed of" in text
    assert build_run_id in text  # validation_run_id: the evaluation of the last build run
    print(f"screenshots: {out}")

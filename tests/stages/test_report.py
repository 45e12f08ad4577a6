import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import REPO, tiny_params, write_params

runner = CliRunner()
MODELS = ("efficientnet_lite0", "efficientnet_lite1")
ARTIFACTS = REPO / "tests" / "artifacts"


def invoke(*args):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def small_run(project):
    write_params(project, tiny_params(grid_models=MODELS))
    for variant in ("plain", "augmented"):
        for model in MODELS:
            invoke(f"generate-{variant}", "--model", model, "--class-set", "tiny")
    invoke("cross-evaluate")
    invoke("report")
    return project


def test_report_shows_every_image_the_heatmap_tables_params_and_timings(small_run):
    page = (small_run / "data/report/index.html").read_text()
    sources = re.findall(r"<img [^>]*src='([^']+)'", page)
    assert len(sources) == 1 + 2 * 2 * len(MODELS)  # heatmap + classes x variants x models
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert "<link" not in page and "<script" not in page and "href=" not in page
    for text in ("1<br>goldfish", "2<br>great white shark", "id='transfer'",
                 "id='own-and-others'", "class='matrix'", "id='params'", "id='timings'",
                 "generate-augmented@efficientnet_lite1-tiny", "cross-evaluate", "fourier"):
        assert text in page, text
    # A setting shared by the variants shows once, one they set apart shows per variant.
    assert "<tr><th>steps</th><td>3</td></tr>" in page
    assert "<tr><th>patience</th><td>plain: 40, augmented: null</td></tr>" in page
    assert "<tr><th>optimizer</th><td>null</td></tr>" in page
    # Each tile lists every evaluator's verdict, colored hit or miss.
    assert len(re.findall(r"<li class='(?:hit|miss)'>", page)) == 2 * 2 * len(MODELS) * 2
    summary = (small_run / "metrics/summary.md").read_text()
    metrics = json.loads((small_run / "metrics/cross_eval.json").read_text())
    own = metrics["plain"]["efficientnet_lite0"]["efficientnet_lite0"]["top1"]
    other = metrics["plain"]["efficientnet_lite1"]["efficientnet_lite0"]["top1"]
    assert "| evaluator | plain: own images | plain: other models' images |" in summary
    assert f"| efficientnet_lite0 | {100 * own:.1f}% | {100 * other:.1f}% |" in summary


def test_report_without_cross_evaluation_exits_2(project):
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 2 and "metrics/cross_eval.json not found" in result.output
    assert not (project / "data/report").exists()


def find_chromium():
    for browser in ("chromium", "chromium-browser"):
        if shutil.which(browser) and shutil.which("chromedriver"):
            return shutil.which(browser)
    return None


@pytest.mark.skipif(find_chromium() is None, reason="needs Debian's chromium and chromium-driver")
def test_report_opens_from_disk_in_headless_chromium(small_run):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find_chromium()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(Path(small_run / "data/report/index.html").as_uri())
        widths = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 9 and all(width > 0 for width in widths), widths
        tables = driver.execute_script(
            "return Array.from(document.querySelectorAll('table')).map(t => t.id || t.className)")
        for name in ("transfer", "matrix", "own-and-others", "gallery", "params", "timings"):
            assert name in tables, tables
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "report.png"))
    finally:
        driver.quit()

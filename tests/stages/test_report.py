import json
import os
import re
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from featviz.cli import app
from stages.report import TEMPLATES
from tests.conftest import REPO, run, tiny_params, write_params

runner = CliRunner()
MODELS = ("efficientnet_lite0", "efficientnet_lite1")
ARTIFACTS = REPO / "tests" / "artifacts"


def invoke(*args):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def evaluated_once(tmp_path_factory):
    """Images and cross-evaluation of a small run, made once for this module's tests."""
    folder = tmp_path_factory.mktemp("evaluated")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        write_params(folder, tiny_params(grid_models=MODELS))
        for variant in ("plain", "augmented"):
            for model in MODELS:
                invoke(f"generate-{variant}", "--model", model, "--class-set", "tiny")
        invoke("cross-evaluate")
    return folder


@pytest.fixture
def evaluated(evaluated_once, tmp_path, monkeypatch):
    """A copy of that run as the working directory; no report yet."""
    project = tmp_path / "run"
    shutil.copytree(evaluated_once, project)
    monkeypatch.chdir(project)
    return project


@pytest.fixture
def small_run(evaluated):
    invoke("report")
    return evaluated


def test_report_shows_every_image_the_heatmap_tables_curves_and_params(small_run):
    page = (small_run / "data/report/index.html").read_text()
    sources = re.findall(r"<img [^>]*src='([^']+)'", page)
    # a heatmap, and each class image with its transparency map
    assert len(sources) == 1 + 2 * 2 * 2 * len(MODELS)
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert "<link" not in page and "<script" not in page and "http" not in page
    for text in ("1<br>goldfish", "2<br>great white shark", "id='transfer'", "class='matrix'",
                 "id='params'", "id='run'", "fourier(decay=1.5)", "<svg", "<polyline",
                 "stopped early", "own top-1 over views", "torch ", "revision"):
        assert text in page, text
    assert "wall seconds" not in page  # nothing that differs between runs of the same params
    # A setting shared by the variants shows once, one they set apart shows per variant.
    assert "<tr><th>steps</th><td>3</td></tr>" in page
    assert "<tr><th>patience</th><td>plain: 40, augmented: null</td></tr>" in page
    assert "<tr><th>optimizer</th><td>adam (the parameterization&#39;s)</td></tr>" in page
    assert "<circle" in page and "<p class='legend'>" in page
    assert "<tr><th>revision</th><td>params, pipeline and code of no git repository</td>" in page
    # Each tile lists every evaluator's verdict, colored hit or miss; a click opens it whole.
    assert len(re.findall(r"<li class='(?:hit|miss)'>", page)) == 2 * 2 * len(MODELS) * 2
    assert len(re.findall(r"<figure id='([^']+)'><a href='#\1'>", page)) == 2 * 2 * len(MODELS)
    summary = (small_run / "metrics/summary.md").read_text()
    metrics = json.loads((small_run / "metrics/cross_eval.json").read_text())
    assert "| variant | self top-1 | transfer top-1 | held-out top-1 |" in summary
    assert f"| plain | {100 * metrics['plain']['self_top1']:.1f}% |" in summary


def test_the_revision_names_the_commit_of_the_inputs_and_the_experiment(project, monkeypatch):
    from stages.report import _revision

    assert _revision() == "params, pipeline and code not committed yet"
    run("git", "add", "-A", cwd=project)
    run("git", "commit", "-q", "-m", "inputs", cwd=project)
    commit = run("git", "log", "-1", "--format=%h of %cs", cwd=project).strip()
    assert _revision() == f"params, pipeline and code as of commit {commit}"
    monkeypatch.setenv("DVC_EXP_NAME", "prima-huts")
    (project / "params.yaml").write_text((project / "params.yaml").read_text() + "\n")
    assert _revision() == ("DVC experiment prima-huts (its params as below), run on the pipeline "
                           f"and code as of commit {commit}, with uncommitted changes")


def test_the_report_is_the_same_for_the_same_inputs(small_run):
    first = (small_run / "data/report/index.html").read_bytes()
    invoke("report")
    assert (small_run / "data/report/index.html").read_bytes() == first


def test_report_without_cross_evaluation_exits_2(project):
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 2 and "data/cross_eval/summary.json not found" in result.output
    assert not (project / "data/report").exists()


def find_chromium():
    for browser in ("chromium", "chromium-browser"):
        if shutil.which(browser) and shutil.which("chromedriver"):
            return shutil.which(browser)
    return None


def headless_chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find_chromium()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="needs Debian's chromium and chromium-driver")
LOADED_WIDTHS = "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"


@needs_chromium
def test_report_opens_from_disk_in_headless_chromium(small_run):
    driver = headless_chromium()
    try:
        driver.get(Path(small_run / "data/report/index.html").as_uri())
        widths = driver.execute_script(LOADED_WIDTHS)
        assert len(widths) == 17 and all(width > 0 for width in widths), widths
        tables = driver.execute_script(
            "return Array.from(document.querySelectorAll('table')).map(t => t.id || t.className)")
        for name in ("transfer", "matrix", "gallery", "classes", "run", "params"):
            assert name in tables, tables
        # a click on an image shows it full size; a click on its map closes it
        image = driver.find_element("css selector", ".gallery figure a img")
        small = image.size["width"]
        image.click()
        assert image.size["width"] > 2 * small
        driver.find_element("css selector", ".gallery figure:target img.map").click()
        assert image.size["width"] == small
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "report.png"))
    finally:
        driver.quit()


@pytest.fixture
def with_blocks(evaluated):
    """The small run with building blocks on its class set, k 2, and its report."""
    params = tiny_params(grid_models=MODELS)
    params["grid"]["block_sets"] = ["tiny"]
    params["building_blocks"].update(k=2, views=1, random_draws=2, steps=3, image_size=64,
                                     view_size=64)
    write_params(evaluated, params)
    for model in MODELS:
        invoke("building-blocks", "--model", model, "--class-set", "tiny")
    invoke("report")
    return evaluated


@needs_chromium
def test_the_building_blocks_section_and_each_layers_atlas_open_in_chromium(with_blocks):
    records = json.loads(
        (with_blocks / "data/generate/blocks/efficientnet_lite0-tiny.json").read_text())
    goldfish = records["layers"]["blocks.6"]["classes"]["1"]["channels"]
    page = (with_blocks / "data/report/index.html").read_text()
    assert "<h2>Building blocks</h2>" in page
    assert f"<li>channel {goldfish[0]['channel']}</li>" in page
    used = {item["channel"] for entry in records["layers"]["blocks.6"]["classes"].values()
            for item in entry["channels"]}
    from selenium.webdriver.support.wait import WebDriverWait

    driver = headless_chromium()
    try:
        driver.get((with_blocks / "data/report/index.html").as_uri())
        widths = driver.execute_script(LOADED_WIDTHS)
        # 17 as without blocks, then per model two classes, each with its image and 2 channels
        assert len(widths) == 17 + len(MODELS) * 2 * 3 and all(widths), widths
        driver.find_element("link text", "The layer's atlas").click()
        assert driver.current_url.endswith("atlas-efficientnet_lite0-tiny-blocks.6.html")
        lazy = driver.find_elements("css selector", "img[loading='lazy']")
        assert len(lazy) == len(used)
        for image in lazy:  # each loads once scrolled to
            driver.execute_script("arguments[0].scrollIntoView()", image)
        WebDriverWait(driver, 10).until(lambda d: all(d.execute_script(LOADED_WIDTHS)))
        assert set(driver.execute_script(LOADED_WIDTHS)) == {64}
        assert "goldfish: " in driver.find_element("tag name", "body").text
    finally:
        driver.quit()


def report_fails_with(project, message: str) -> None:
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (project / "data/report").exists()


IMAGE = "data/generated/augmented/efficientnet_lite1-tiny/2_great_white_shark.png"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "jpeg"])
def test_a_broken_image_exits_2_naming_the_file(evaluated, damage):
    path = evaluated / IMAGE
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    else:
        Image.new("RGB", (8, 8)).save(path, format="JPEG")
    report_fails_with(evaluated, IMAGE)


@pytest.mark.parametrize(
    "content, message",
    [("[1, 2]", "must hold a JSON object"),
     ('{"views": 2}', "label_spaces must group the evaluators"),
     ('{"views": 2, "label_spaces": [["efficientnet_lite0", "efficientnet_lite1"]], '
      '"plain": {}}', "plain.efficientnet_lite0."),
     ("{not json", "cannot read data/cross_eval/summary.json")],
)
def test_a_cross_evaluation_summary_of_the_wrong_shape_exits_2(evaluated, content, message):
    (evaluated / "data/cross_eval/summary.json").write_text(content)
    report_fails_with(evaluated, message)


def test_a_summary_value_of_the_wrong_type_exits_2(evaluated):
    path = evaluated / "data/cross_eval/summary.json"
    summary = json.loads(path.read_text())
    summary["augmented"]["efficientnet_lite0"]["efficientnet_lite1"]["top1"] = "high"
    path.write_text(json.dumps(summary))
    report_fails_with(evaluated, "augmented.efficientnet_lite0.efficientnet_lite1.top1 must be a "
                                 "fraction in [0, 1], got 'high'")


@pytest.mark.parametrize(
    "content, message",
    [(b"", "cannot read data/cross_eval/images.csv"),
     (b"\xff\xfe\x00\x81binary\x00\xff", "cannot read data/cross_eval/images.csv"),
     (b"a,b\n1,2\n", "lacks the column(s) variant, generator"),
     (None, "has no row for augmented, efficientnet_lite1, tiny, 2, efficientnet_lite1"),
     (b"wrong types", "column center_prediction must hold only integer values")],
)
def test_a_scores_table_of_the_wrong_shape_exits_2(evaluated, content, message):
    path = evaluated / "data/cross_eval/images.csv"
    rows = pd.read_csv(path)
    if content is None:
        rows = rows.iloc[:-1]
        rows.to_csv(path, index=False)
    elif content == b"wrong types":
        rows["center_prediction"] = "cat"
        rows.to_csv(path, index=False)
    else:
        path.write_bytes(content)
    report_fails_with(evaluated, message)


def test_a_missing_generate_record_names_the_stage_that_writes_it(evaluated):
    (evaluated / "data/generate/plain/efficientnet_lite1-tiny.json").unlink()
    report_fails_with(evaluated, "data/generate/plain/efficientnet_lite1-tiny.json not found: "
                                 "run the generate-plain@efficientnet_lite1-tiny stage first")


def test_the_report_is_readable_by_others_under_umask_022(evaluated):
    previous = os.umask(0o022)
    try:
        invoke("report")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((evaluated / "data/report").stat().st_mode) == 0o755
    assert stat.S_IMODE((evaluated / "data/report/index.html").stat().st_mode) == 0o644


def test_a_damaged_building_blocks_record_exits_2_naming_it(with_blocks):
    path = with_blocks / "data/generate/blocks/efficientnet_lite0-tiny.json"
    records = json.loads(path.read_text())
    records["layers"]["blocks.6"]["classes"]["1"]["channels"][0]["channel"] = "five"
    path.write_text(json.dumps(records))
    shutil.rmtree(with_blocks / "data/report")
    report_fails_with(with_blocks, "a channel of class 1 of layer blocks.6 is")


def test_a_ratio_without_a_random_cost_to_divide_by_shows_the_two_drops(with_blocks):
    path = with_blocks / "data/generate/blocks/efficientnet_lite0-tiny.json"
    records = json.loads(path.read_text())
    records["layers"]["blocks.6"]["metrics"].update(ablation_ratio=None, logit_drop_top_k=2.5,
                                                    logit_drop_random=0.000004)
    path.write_text(json.dumps(records))
    invoke("report")
    page = (with_blocks / "data/report/index.html").read_text()
    assert "costs its logit 2.50, where 2 random channels cost 0.000: too little for a ratio" \
        in page


def test_the_templates_escape_what_params_and_labels_say():
    page = TEMPLATES.get_template("atlas.html").render(
        model="m<i>", layer="blocks.1",
        channels=[{"channel": 3, "source": "../a'b.png", "users": [("<script>x</script>", "9%")]}])
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;: 9%" in page
    assert "m&lt;i&gt;" in page and "src='../a&#39;b.png'" in page

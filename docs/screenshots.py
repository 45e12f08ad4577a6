"""Regenerate the README's pictures from the report of the last `dvc repro`.

    python docs/screenshots.py

Needs Debian's chromium and chromium-driver (as the report test does): docs/gallery.jpg is the
report's gallery table, docs/report.png the top of its cross-evaluation section,
docs/units.jpg its units gallery when the run had unit sets (`grid.unit_sets`), and
docs/blocks.jpg the first table of its building blocks when the run had them
(`grid.block_sets`).
"""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

REPORT = Path("data/report/index.html")
DOCS = Path(__file__).parent
REPORT_SHOT_SIZE = (1220, 780)
GALLERY_SCALE = 0.6  # the whole gallery at a size a README shows


def main() -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(REPORT.resolve().as_uri())
        driver.set_window_size(1400, 1000)
        box = driver.find_element(By.CSS_SELECTOR, "table.gallery").rect
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "captureBeyondViewport": True,
            "clip": {"x": box["x"], "y": box["y"], "width": box["width"],
                     "height": box["height"], "scale": GALLERY_SCALE},
        })
        gallery = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
        gallery.save(DOCS / "gallery.jpg", quality=85)
        for selector, name in (("table#units", "units.jpg"), ("table.blocks", "blocks.jpg")):
            tables = driver.find_elements(By.CSS_SELECTOR, selector)
            if tables:
                box = tables[0].rect
                shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
                    "captureBeyondViewport": True,
                    "clip": {"x": box["x"], "y": box["y"], "width": box["width"],
                             "height": box["height"], "scale": GALLERY_SCALE},
                })
                Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB").save(
                    DOCS / name, quality=85)
        heading = driver.find_element(By.XPATH, "//h2[text()='Cross-evaluation']")
        driver.set_window_size(REPORT_SHOT_SIZE[0], REPORT_SHOT_SIZE[1] + 140)
        driver.execute_script("arguments[0].scrollIntoView()", heading)
        page = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
        page.crop((0, 0, *REPORT_SHOT_SIZE)).save(DOCS / "report.png")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()

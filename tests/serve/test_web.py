"""The web page in headless Chromium (Debian's chromium + chromium-driver, through Selenium): a real clip uploaded,
its transcript shown as the stream arrives, its segments listed, an .srt downloaded; a screenshot is kept."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
srt = pytest.importorskip("srt")

CHROMIUM = os.environ.get("OVOZ_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OVOZ_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
"""Screenshots land here (ignored by git) as well as in the test's tmp folder."""

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                reason="Chromium or chromedriver missing (apt-get install chromium chromium-driver)")


@pytest.fixture()
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1200,1000", f"--user-data-dir={tmp_path / 'profile'}",
                     # a synthetic microphone (a beep), allowed without a prompt
                     "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):
        options.add_argument(argument)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def test_upload_a_clip_see_the_transcript_and_download_srt(browser, server, tiny_model, clip_22k, options, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    expected = tiny_model.transcribe(clip_22k, options=options)
    browser.get(server + "/")
    assert "ovoz" in browser.title
    browser.find_element(By.ID, "file").send_keys(clip_22k)
    button = browser.find_element(By.ID, "transcribe")
    WebDriverWait(browser, 10).until(EC.element_to_be_clickable(button))
    button.click()
    WebDriverWait(browser, 120).until(EC.text_to_be_present_in_element((By.ID, "status"), "Done"))

    shown = browser.find_element(By.ID, "transcript").get_attribute("textContent")
    assert shown.split() == expected.text.split()
    rows = browser.find_elements(By.CSS_SELECTOR, "#segments tbody tr")
    assert len(rows) == len(expected.segments)

    saved = tmp_path / "page.png"
    browser.save_screenshot(str(saved))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(saved, ARTIFACTS / "serve-web-page.png")
    assert saved.stat().st_size > 1000

    link = browser.find_element(By.ID, "download-srt")
    WebDriverWait(browser, 10).until(lambda _: "disabled" not in link.get_attribute("class"))
    link.click()
    target = browser.downloads / (Path(clip_22k).stem + ".srt")
    deadline = time.monotonic() + 30

    def finished() -> bool:  # Chromium writes to a .crdownload file and renames it; the name may show up first
        return (target.exists() and (target.stat().st_size > 0 or not expected.text.strip())
                and not any(p.suffix == ".crdownload" for p in browser.downloads.iterdir()))

    while not finished() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert finished(), list(browser.downloads.iterdir())
    cues = list(srt.parse(target.read_text(encoding="utf-8")))
    assert " ".join(c.content for c in cues).split() == expected.text.split()
    assert cues[-1].end.total_seconds() <= expected.duration_s + 1e-3


def test_the_page_shows_the_server_s_error(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    (tmp_path / "notes.wav").write_text("not audio\n" * 50)
    browser.get(server + "/")
    browser.find_element(By.ID, "file").send_keys(str(tmp_path / "notes.wav"))
    browser.find_element(By.ID, "transcribe").click()
    WebDriverWait(browser, 60).until(EC.text_to_be_present_in_element((By.ID, "status"), "Error"))
    assert "notes.wav" in browser.find_element(By.ID, "status").text


def test_record_from_the_microphone(browser, server):
    """The page records the (fake) microphone with MediaRecorder and sends the webm/ogg it made."""
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    def served() -> float:
        metrics = httpx.get(server + "/metrics").text
        line = next((x for x in metrics.splitlines()
                     if x.startswith('ovoz_requests_total{endpoint="/v1/audio/transcriptions",status="200"}')), "")
        return float(line.split()[-1]) if line else 0.0

    before = served()
    browser.get(server + "/")
    record = browser.find_element(By.ID, "record")
    record.click()
    WebDriverWait(browser, 10).until(EC.text_to_be_present_in_element((By.ID, "record"), "Stop"))
    time.sleep(1.5)  # a second and a half of the fake microphone's beeps
    record.click()
    WebDriverWait(browser, 120).until(EC.text_to_be_present_in_element((By.ID, "status"), "Done"))
    assert served() == before + 1
    assert browser.find_element(By.ID, "record").text == "Record"

"""The page of `fer-nla serve` in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, which .ci/run installs) driven by selenium against a real uvicorn server on a
free loopback port. A photo chosen through the file input comes back as a canvas with a box per
face and a bar chart per face. Skipped, saying why, where Chromium or its driver is absent."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'fer-nla[serve]'")
pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[dev]'")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from serve_helpers import PHOTOS, TRUTH, serving  # noqa: E402

from fer_nla.serve import ServeSettings  # noqa: E402
from fer_nla.serve.app import create_app  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "chromium-driver")
BOX = (0, 200, 255)  # the page's box colour, as fer_nla.predict.annotate.BOX_COLOR
# Counts, over the whole canvas, the pixels of exactly the box colour: the page's against the photo
# alone drawn the same way, from the file still held by the input.
COUNT_BOX_PIXELS = """
const done = arguments[arguments.length - 1];
const canvas = document.getElementById('photo');
const count = (ctx) => { const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] === 0 && d[i + 1] === 200 && d[i + 2] === 255) n++; return n; };
createImageBitmap(document.getElementById('file').files[0]).then((bitmap) => {
  const plain = document.createElement('canvas'); plain.width = canvas.width; plain.height = canvas.height;
  const ctx = plain.getContext('2d'); ctx.drawImage(bitmap, 0, 0, plain.width, plain.height);
  done([count(canvas.getContext('2d')), count(ctx), canvas.width, canvas.height]);
});
"""


def _which(names: tuple[str, ...]) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


def start_chromium(*flags: str) -> webdriver.Chrome:
    """Headless Chromium driven by selenium, with ``flags`` added; skips the test, saying why,
    where Chromium or its driver is absent or does not start."""
    binary, driver = _which(BROWSERS), _which(DRIVERS)
    if binary is None or driver is None:
        pytest.skip(f"headless Chromium needs {'chromium' if binary is None else 'chromium-driver'} "
                    "(Debian: apt-get install chromium chromium-driver; .ci/run installs both)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1000", "--disable-extensions", *flags):
        options.add_argument(flag)
    try:
        return webdriver.Chrome(options=options, service=Service(executable_path=driver))
    except WebDriverException as err:
        pytest.skip(f"Chromium at {binary} did not start with {driver}: {err.msg}")


@pytest.fixture(scope="module")
def browser():
    chrome = start_chromium()
    yield chrome
    chrome.quit()


@pytest.fixture(scope="module")
def server(builtin_predictor):
    """A real uvicorn server in a thread on a free loopback port; its base URL."""
    app = create_app(ServeSettings(), predictor_factory=lambda settings: builtin_predictor)
    with serving(app) as (host, port):
        yield f"http://{host}:{port}"


def test_a_chosen_photo_is_drawn_with_a_box_per_face_and_a_chart_per_face(browser, server) -> None:
    browser.get(f"{server}/")
    canvas = browser.find_element(By.ID, "photo")
    assert canvas.get_attribute("data-state") == "idle" and canvas.get_attribute("data-boxes") == "0"
    browser.find_element(By.ID, "file").send_keys(str(PHOTOS / "group.jpg"))
    WebDriverWait(browser, 60).until(lambda b: canvas.get_attribute("data-state") in ("done", "error"))
    assert canvas.get_attribute("data-state") == "done", browser.find_element(By.ID, "error").text
    faces = len(TRUTH["group.jpg"]["faces"])
    assert canvas.get_attribute("data-boxes") == str(faces) == "14"
    on_page, in_photo, width, height = browser.execute_async_script(COUNT_BOX_PIXELS)
    assert (width, height) == (1280, 720)
    assert on_page - in_photo > faces * 100  # every box is a 2-px line around a face of 40+ px
    cards = browser.find_elements(By.CSS_SELECTOR, "#faces li.face")
    assert len(cards) == faces
    assert len(cards[0].find_elements(By.CSS_SELECTOR, ".bar")) == 8  # one bar per expression
    assert browser.find_element(By.ID, "status").text.startswith("14 faces in the 1280×720 photo")


def test_a_file_that_is_not_a_photo_shows_the_servers_message(browser, server, tmp_path) -> None:
    note = tmp_path / "notes.txt"
    note.write_text("not a photo")
    browser.get(f"{server}/")
    browser.find_element(By.ID, "file").send_keys(str(note))
    canvas = browser.find_element(By.ID, "photo")
    WebDriverWait(browser, 30).until(lambda b: canvas.get_attribute("data-state") in ("done", "error"))
    assert canvas.get_attribute("data-state") == "error"
    message = browser.find_element(By.ID, "error").text
    assert message.startswith("415 Unsupported Media Type: 'notes.txt': received 11 bytes of text starting 'not a photo'")


def test_after_a_refused_file_the_earlier_photo_is_gone_and_the_advice_is_for_the_page(browser, server,
                                                                                       tmp_path) -> None:
    """Issue 24: the previous photo stayed on screen under the error, as if it were the refused
    one, and the advice told a browser user to use curl."""
    browser.get(f"{server}/")
    canvas = browser.find_element(By.ID, "photo")
    browser.find_element(By.ID, "file").send_keys(str(PHOTOS / "group.jpg"))
    WebDriverWait(browser, 60).until(lambda b: canvas.get_attribute("data-state") == "done")
    assert canvas.is_displayed() and canvas.get_attribute("width") == "1280"
    note = tmp_path / "notes.txt"
    note.write_text("not a photo")
    browser.find_element(By.ID, "file").send_keys(str(note))
    WebDriverWait(browser, 30).until(lambda b: canvas.get_attribute("data-state") == "error")
    assert not canvas.is_displayed() and canvas.get_attribute("width") == "0"
    assert browser.find_elements(By.CSS_SELECTOR, "#faces li") == []
    message = browser.find_element(By.ID, "error").text
    assert message.endswith("choose or drop a JPEG, PNG, WebP, BMP, GIF or TIFF image on this page")
    assert "curl" not in message

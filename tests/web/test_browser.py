"""The dashboard in a real headless Chromium (Debian `chromium` + `chromium-driver`).

One browser for the module. Selenium's calls block, so each runs in a worker thread while
the dashboard and the services keep serving on trio; conditions are awaited with
`WebDriverWait` (bounded polling in the browser), never with sleeps.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import trio

from .conftest import XSS, make_greeter, running_dashboard

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

T = TypeVar("T")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

#: Headless, and fit for a container run as root with a small /dev/shm.
CHROMIUM_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--no-first-run",
)

#: How long the browser may take to show what a test waits for (seconds).
WAIT = 10


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs chromium and chromedriver (Debian: chromium, chromium-driver; "
                    "scripts/install-servers.sh installs them)")  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    try:
        # One request now, so the connection to chromedriver the tests reuse is already
        # open when the leak guard takes its first snapshot.
        driver.get("about:blank")
        yield driver
    finally:
        driver.quit()


async def in_browser(fn: Callable[..., T], *args: Any) -> T:
    return await trio.to_thread.run_sync(functools.partial(fn, *args))


def _wait(driver: WebDriver, condition: Callable[[WebDriver], Any]) -> Any:
    # The live list re-renders under us: an element read mid-update is stale, not an error.
    return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
        condition
    )


def _open(driver: WebDriver, url: str) -> None:
    driver.get(url)
    _wait(driver, lambda d: d.execute_script("return document.readyState") == "complete")


def _live(driver: WebDriver) -> None:
    _wait(driver, lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "live")


def _listed(driver: WebDriver) -> list[str]:
    for _ in range(WAIT * 10):  # the list may re-render between finding and reading it
        try:
            items = driver.find_elements(By.CSS_SELECTOR, "#services li")
            return [item.get_attribute("data-name") or "" for item in items]
        except StaleElementReferenceException:
            continue
    raise AssertionError("the services list never held still")


async def test_the_service_page_renders_a_running_service(browser: WebDriver) -> None:
    async with running_dashboard(make_greeter()) as site:
        await in_browser(_open, browser, f"{site.url}/service/greeter")

        def read() -> dict[str, Any]:
            page = browser.find_element(By.TAG_NAME, "main")
            hello = browser.find_element(By.CSS_SELECTOR, 'article[data-endpoint="Say.Hello"]')
            return {
                "title": browser.find_element(By.TAG_NAME, "h1").text,
                "address": browser.find_element(By.CSS_SELECTOR, "table.nodes td.address").text,
                "text": page.text,
                "template": hello.find_element(By.TAG_NAME, "textarea").get_attribute("value"),
                "xss": browser.execute_script("return window.__xss === undefined"),
                "images": len(browser.find_elements(By.CSS_SELECTOR, "main img")),
            }

        seen = await in_browser(read)
    assert seen["title"] == "greeter"
    assert seen["address"].startswith("127.0.0.1:")
    assert "version 1.0.0" in seen["text"]
    assert XSS in seen["text"]  # shown as text ...
    assert seen["xss"] and seen["images"] == 0  # ... never run as markup
    assert '"name": ""' in seen["template"]
    assert "Say.Count" in seen["text"]


def _submit(driver: WebDriver, request: str) -> tuple[str, str]:
    article = driver.find_element(By.CSS_SELECTOR, 'article[data-endpoint="Say.Hello"]')
    area = article.find_element(By.TAG_NAME, "textarea")
    area.clear()
    area.send_keys(request)
    article.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    result = article.find_element(By.CSS_SELECTOR, ".result")
    _wait(driver, lambda d: result.get_attribute("data-state") in ("ok", "error"))
    status = result.find_element(By.CSS_SELECTOR, ".status").text
    return f"{result.get_attribute('data-state')} {status}", result.find_element(
        By.CSS_SELECTOR, ".reply"
    ).text


async def test_the_call_form_shows_the_reply_and_errors(browser: WebDriver) -> None:
    async with running_dashboard(make_greeter()) as site:
        await in_browser(_open, browser, f"{site.url}/service/greeter")
        ok = await in_browser(_submit, browser, '{"name": "Ann"}')
        refused = await in_browser(_submit, browser, '{"name": ""}')
        broken = await in_browser(_submit, browser, '{"name": ')
    assert ok[0] == "ok 200"
    assert '"msg": "Hello Ann"' in ok[1]
    assert refused[0].startswith("error 400")
    assert "name must not be empty" in refused[1]
    assert broken[0] == "error invalid JSON"


async def test_a_service_started_later_appears_without_a_reload(browser: WebDriver) -> None:
    async with running_dashboard(make_greeter()) as site:
        await in_browser(_open, browser, f"{site.url}/")
        await in_browser(_live, browser)
        await in_browser(browser.execute_script, "window.__sameDocument = 42")
        assert await in_browser(_listed, browser) == ["greeter"]
        async with site.run(make_greeter("late", "0.1")):
            await in_browser(_wait, browser, lambda d: "late" in _listed(d))
            link = await in_browser(
                lambda: browser.find_element(By.CSS_SELECTOR, 'li[data-name="late"] a')
            )
            href = await in_browser(link.get_attribute, "href")
        await in_browser(_wait, browser, lambda d: "late" not in _listed(d))
        same = await in_browser(browser.execute_script, "return window.__sameDocument")
    assert href == f"{site.url}/service/late"
    assert same == 42  # the list changed in place: no reload

"""The chat page in a real headless Chromium (Debian's, driven by Playwright): type, see the reply stream in."""

from __future__ import annotations

import shutil

import pytest
from serving import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.serve


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(server.url)
    page.get_by_test_id("textbox").wait_for(timeout=60_000)  # the app is rendered
    yield page
    context.close()


def send(page, message: str) -> None:
    box = page.get_by_test_id("textbox")
    box.fill(message)
    page.get_by_test_id("submit-button").click()


# Records, on every change of the page, the bot bubbles' text and whether the stop button is there.
WATCH = """() => {
  window.seen = [];
  const record = () => window.seen.push({
    bots: [...document.querySelectorAll('[role=log] [data-testid=bot]')].map(b => b.innerText),
    stop: document.querySelector('[data-testid=stop-button]') !== null,
  });
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def send_and_watch(page, message: str) -> list[dict]:
    """Send `message`; what the page showed until the reply was done (stop button gone, textbox usable)."""
    page.evaluate(WATCH)
    send(page, message)
    page.wait_for_function("() => window.seen.some(s => s.stop)", timeout=60_000)
    page.get_by_test_id("stop-button").wait_for(state="detached", timeout=120_000)
    page.get_by_test_id("submit-button").wait_for(state="visible", timeout=30_000)
    return page.evaluate("window.seen")


def test_the_page_says_replies_come_from_an_ai_model(page):
    body = page.locator("body").inner_text()
    assert "Replies on this page come from an AI model of Elijah" in body
    assert "not from Elijah" in body


def bot_texts(page) -> list[str]:
    return page.locator("[role=log] [data-testid=bot]").all_inner_texts()


def user_texts(page) -> list[str]:
    return [t.strip() for t in page.locator("[role=log] [data-testid=user]").all_inner_texts()]


def test_typing_as_the_other_person_streams_a_reply_and_the_chat_goes_on(page, server):
    seen = send_and_watch(page, "hi how are you")
    first = bot_texts(page)
    assert first and all(t.strip() for t in first)
    streaming = [s["bots"] for s in seen if s["stop"] and s["bots"]]
    assert len({"\n".join(b) for b in streaming}) >= 2, "the reply should grow on screen while the stop button shows"
    assert user_texts(page) == ["hi how are you"]

    send_and_watch(page, "want to go climbing on saturday")
    assert user_texts(page) == ["hi how are you", "want to go climbing on saturday"]
    second = bot_texts(page)[len(first) :]
    assert second and all(t.strip() for t in second)
    page.screenshot(path=str(server.log.parent / "chat.png"), full_page=True)

    page.get_by_role("button", name="New conversation").click()
    page.locator("[role=log] [data-testid=user]").first.wait_for(state="detached", timeout=10_000)
    send_and_watch(page, "hi how are you")
    assert bot_texts(page) == first  # a fresh conversation: the same greedy reply as the first time


def test_an_empty_message_gets_no_reply_and_the_page_goes_on(page):
    page.get_by_test_id("textbox").fill("   ")
    page.get_by_test_id("textbox").press("Enter")
    page.wait_for_timeout(2000)
    assert bot_texts(page) == []
    send_and_watch(page, "hi how are you")
    assert bot_texts(page)

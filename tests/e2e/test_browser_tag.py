"""Debian's headless Chromium runs our tag on a page served from localhost: page views
reach the topic with one first-party visitor id, by sendBeacon and by the pixel fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from schemas import topics
from schemas.events import decode_event
from services.kit.broker import EmbeddedBroker, free_port
from services.kit.runner import quiet_server
from tests.harness import consume_all, wait_until_listening
from tests.integration.test_ingest_http import KEY, ingest  # noqa: F401 - the fixture

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="no /usr/bin/chromium: apt-get install chromium to run the browser test",
    ),
]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _site(ingest_url: str) -> FastAPI:
    site = FastAPI()

    @site.get("/{name}.html", response_class=HTMLResponse)
    async def page(name: str) -> str:
        return (
            f"<!doctype html><html><head><title>Page {name}</title>"
            f'<script async src="{ingest_url}/t.js" data-key="{KEY}" data-account="acme.com">'
            f'</script></head><body><a id="next" href="/two.html">next</a></body></html>'
        )

    return site


@pytest.fixture
async def site(ingest: str) -> AsyncIterator[str]:  # noqa: F811
    port = free_port()
    server = quiet_server(_site(ingest), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    await wait_until_listening(port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_two_pages_and_a_fallback_hit_share_one_visitor(
    site: str, broker: EmbeddedBroker
) -> None:
    playwright = pytest.importorskip("playwright.async_api")
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{site}/one.html", wait_until="networkidle")
        await page.click("#next")
        await page.wait_for_url(f"{site}/two.html")
        await page.wait_for_load_state("networkidle")
        await page.add_init_script("delete Navigator.prototype.sendBeacon;")
        await page.goto(f"{site}/three.html", wait_until="networkidle")
        cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
        await browser.close()
    produced = await consume_all(broker.bootstrap, topics.EVENTS.name, 3)
    events = sorted((decode_event(r.value) for r in produced), key=lambda e: e.occurred_at)
    assert [(e.type, e.url, e.title, e.account) for e in events] == [
        ("page_viewed", f"{site}/{name}.html", f"Page {name}", "acme.com")
        for name in ("one", "two", "three")
    ]
    assert {e.anonymous_id for e in events} == {cookies["abm_vid"]}
    assert events[1].referrer == f"{site}/one.html"
    assert all(e.is_bot for e in events)  # HeadlessChrome is tagged, not dropped

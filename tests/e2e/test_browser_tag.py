"""Debian's headless Chromium runs our tag on a page served from localhost: page views
reach the topic with one first-party visitor id, by sendBeacon and by the pixel fallback;
and, through the funnel, the account's state in the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from schemas import topics
from schemas.events import decode_event
from services.kit.broker import EmbeddedBroker, free_port
from services.kit.runner import quiet_server
from tests.e2e.test_pipeline import API_TOKEN, WRITE_KEY, seed
from tests.harness import Stack, consume_all, wait_until_listening, wait_until_ready
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


def _site(ingest_url: str, key: str = KEY) -> FastAPI:
    site = FastAPI()

    @site.get("/{name}.html", response_class=HTMLResponse)
    async def page(name: str) -> str:
        return (
            f"<!doctype html><html><head><title>Page {name}</title>"
            f'<script async src="{ingest_url}/t.js" data-key="{key}" data-account="acme.com">'
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


DESKTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


async def test_a_visitors_pages_reach_the_accounts_state_in_the_api(
    services: Stack, pg_url: str
) -> None:
    """The whole path: the tag in a (non-headless-looking) browser, ingest, the funnel, the
    API. A target account's two page views engage it, and its timeline shows both visits
    with how the account was identified."""
    playwright = pytest.importorskip("playwright.async_api")
    await seed(pg_url)
    for name in ("ingest", "funnel", "api"):
        services.start(name)
    collector, api = services.url("ingest"), services.url("api")
    await wait_until_ready(collector)
    await wait_until_ready(api)
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx.AsyncClient(timeout=10) as client:
        target = {"type": "group", "messageId": "crm-1", "groupId": "acme.com",
                  "traits": {"name": "Acme", "target": True}}  # fmt: skip
        sent = await client.post(
            f"{collector}/v1/batch", json={"batch": [target]}, auth=(WRITE_KEY, "")
        )
        assert sent.status_code == 200, sent.text
        await wait_for_account(client, f"{api}/v1/accounts/acme.com", bearer, "target")

        port = free_port()
        server = quiet_server(_site(collector, WRITE_KEY), "127.0.0.1", port)
        serving = asyncio.create_task(server.serve())
        await wait_until_listening(port)
        site = f"http://127.0.0.1:{port}"
        try:
            async with playwright.async_playwright() as driver:
                browser = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = await (await browser.new_context(user_agent=DESKTOP)).new_page()
                await page.goto(f"{site}/one.html", wait_until="networkidle")
                await page.click("#next")
                await page.wait_for_url(f"{site}/two.html")
                await page.wait_for_load_state("networkidle")
                visitor = {c["name"]: c["value"] for c in await page.context.cookies()}["abm_vid"]
                await browser.close()
        finally:
            server.should_exit = True
            await serving

        account = await wait_for_account(client, f"{api}/v1/accounts/acme.com", bearer, "engaged")
        timeline = (await client.get(f"{api}/v1/accounts/acme.com/timeline", headers=bearer)).json()
    visits = [e for e in timeline["items"] if e["type"] == "page_viewed"]
    assert [v["url"] for v in visits] == [f"{site}/two.html", f"{site}/one.html"]  # newest first
    assert {v["anonymous_id"] for v in visits} == {visitor}
    assert {v["account_provenance"] for v in visits} == {"group_id"}  # the tag's data-account
    assert not any(v["is_bot"] for v in visits)
    assert account["stage_history"][-1]["to_stage"] == "engaged"
    assert account["stage_history"][-1]["cause_event_ids"][0] in {v["event_id"] for v in visits}


async def wait_for_account(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], stage: str
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(200):
        response = await client.get(url, headers=headers)
        if response.status_code == 200:
            body = response.json()
            if body["stage"] == stage:
                return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"acme.com never reached {stage}; last seen {body.get('stage')}")

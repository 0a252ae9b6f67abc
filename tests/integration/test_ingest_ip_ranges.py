"""Company IP ranges end to end: loaded through the admin API (or the CLI), looked up by
ingest, the event on the topic names the account with provenance ``ip_range``, and the
dead-letter copy keeps only what the source's IP policy allows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from schemas import topics
from schemas.events import decode_event
from services import cli
from services.ingest.app import create_app
from services.ingest.company_ranges import CompanyRanges
from services.ingest.settings import IngestSettings
from services.kit import db
from services.kit.broker import EmbeddedBroker, free_port
from services.kit.credentials import store_api_token
from services.kit.ip_ranges import RangeRow, delete_ranges, store_ranges
from services.kit.runner import quiet_server
from tests.api_server import serving
from tests.harness import consume_all, wait_until_ready

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer root"}
RANGES_CSV = """cidr,domain,confidence
203.0.113.0/24,Acme.com,0.8
2001:db8:ac::/48,acme.com
198.51.100.0/24,not a domain
"""


@pytest.fixture
async def api(pg_url: str, broker: EmbeddedBroker) -> AsyncIterator[httpx.AsyncClient]:
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await store_api_token(session, "root", "ops", frozenset({"admin"}))
    await engine.dispose()
    async with serving(pg_url, kafka_bootstrap=broker.bootstrap, api_token_cache_s=0) as client:
        yield client


async def test_ranges_loaded_through_the_api_name_the_account_of_pixel_and_segment_hits(
    api: httpx.AsyncClient, pg_url: str, broker: EmbeddedBroker
) -> None:
    loaded = await api.post(
        "/v1/admin/ip-ranges", headers={**ADMIN, "Content-Type": "text/csv"}, content=RANGES_CSV
    )
    assert loaded.status_code == 200, loaded.text
    body = loaded.json()
    assert (body["loaded"], body["rejected"], body["ranges"], body["domains"]) == (2, 1, 2, 1)
    assert body["errors"] == [{"line": 4, "reason": "domain: not a domain name"}]
    created = await api.post(
        "/v1/admin/write-keys", headers=ADMIN, json={"source": "www", "ip_policy": "truncate"}
    )
    assert created.status_code == 201 and created.json()["ip_policy"] == "truncate"
    key = created.json()["secret"]

    # Ingest starts after the upload: it loads the ranges at startup.
    async with _ingest(pg_url, broker) as ingest, httpx.AsyncClient() as client:
        hit = await client.get(
            f"{ingest}/p.gif?k={key}&url=https://x.io/pricing&aid=v-office&mid=px-1",
            headers={"X-Forwarded-For": "203.0.113.77"},
        )
        assert hit.status_code == 200
        batch = {
            "batch": [
                {"type": "page", "messageId": "seg-1", "anonymousId": "v-six",
                 "properties": {"url": "https://x.io/"}, "context": {"ip": "2001:db8:ac::5"}},
                {"type": "page", "messageId": "bad-1", "anonymousId": "v-bad",
                 "timestamp": "last tuesday", "context": {"ip": "203.0.113.77"}},
            ]
        }  # fmt: skip
        posted = await client.post(f"{ingest}/v1/batch", json=batch, auth=(key, ""))
        assert posted.status_code == 200 and posted.json()["accepted"] == 1
        beacon = {"type": "page", "messageId": "tag-1", "anonymousId": "v-tag",
                  "writeKey": key, "properties": {"url": "https://x.io/"}}  # fmt: skip
        tagged = await client.post(
            f"{ingest}/v1/t",
            content=json.dumps(beacon),
            headers={"Content-Type": "text/plain", "X-Forwarded-For": "203.0.113.5"},
        )
        assert tagged.status_code == 200 and tagged.json()["accepted"] == 1
        snowplow = await client.get(
            f"{ingest}/i?e=pv&eid=sp-1&duid=d-1&url=https://x.io/&k={key}",
            headers={"X-Forwarded-For": "2001:db8:ac:7::1"},
        )
        assert snowplow.status_code == 200

    records = await consume_all(broker.bootstrap, topics.EVENTS.name, 4)
    events = {decode_event(r.value).event_id: decode_event(r.value) for r in records}
    pixel, segment, tag, snowplow_hit = (events[i] for i in ("px-1", "seg-1", "tag-1", "sp-1"))
    assert (tag.account, tag.account_provenance, tag.account_confidence) == (
        "acme.com", "ip_range", 0.8)  # fmt: skip
    assert (snowplow_hit.account, snowplow_hit.account_provenance) == ("acme.com", "ip_range")
    assert (pixel.account, pixel.account_provenance, pixel.account_confidence) == (
        "acme.com", "ip_range", 0.8)  # fmt: skip
    assert (segment.account, segment.account_provenance, segment.account_confidence) == (
        "acme.com", "ip_range", 0.6)  # the /48 has no confidence of its own  # fmt: skip
    raw_ips = (b"203.0.113.77", b"2001:db8:ac::5", b"203.0.113.5", b"2001:db8:ac:7::1")
    assert not [ip for r in records for ip in raw_ips if ip in r.value]  # events carry no IP
    [dead] = await consume_all(broker.bootstrap, topics.DEAD_LETTER.name, 1)
    assert json.loads(dead.value)["context"] == {"ip": "203.0.113.0"}  # truncated to its /24

    summary = (await api.get("/v1/admin/ip-ranges", headers=ADMIN)).json()
    assert (summary["ranges"], summary["domains"]) == (2, 1)
    deleted = await api.delete("/v1/admin/ip-ranges?cidr=203.0.113.9/24", headers=ADMIN)
    assert deleted.json() == {"deleted": 1}
    assert (await api.get("/v1/admin/ip-ranges", headers=ADMIN)).json()["ranges"] == 1


@asynccontextmanager
async def _ingest(pg_url: str, broker: EmbeddedBroker) -> AsyncIterator[str]:
    """Ingest on the API's database, behind a "proxy" on 127.0.0.1 (the test client)."""
    port = free_port()
    settings = IngestSettings(database_url=pg_url, kafka_bootstrap=broker.bootstrap,
                              ingest_port=port, ingest_ack_timeout_s=2,
                              ingest_trusted_proxies=["127.0.0.1/32"])  # fmt: skip
    server = quiet_server(create_app(settings), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    try:
        await wait_until_ready(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_uploads_are_admin_only_and_bad_bodies_are_refused(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/admin/ip-ranges")).status_code == 401
    json_upload = await api.post(
        "/v1/admin/ip-ranges?mode=replace",
        headers=ADMIN,
        json=[{"cidr": "192.0.2.0/24", "domain": "initech.io", "confidence": 0.5}, {"cidr": "x"}],
    )
    assert json_upload.status_code == 200
    assert (json_upload.json()["loaded"], json_upload.json()["rejected"]) == (1, 1)
    empty_replace = await api.post(
        "/v1/admin/ip-ranges?mode=replace", headers=ADMIN, json=[{"cidr": "x", "domain": "y"}]
    )
    assert empty_replace.status_code == 400  # would wipe every range
    not_json = await api.post(
        "/v1/admin/ip-ranges", headers={**ADMIN, "Content-Type": "application/json"}, content="{"
    )
    assert not_json.status_code == 400
    assert (await api.get("/v1/admin/ip-ranges", headers=ADMIN)).json()["ranges"] == 1


async def test_ingest_notices_changes_cheaply_and_swaps_tables(sqlite_url: str) -> None:
    engine = db.create_engine(url=sqlite_url)
    sessions = db.create_sessionmaker(engine)
    ranges = CompanyRanges(sessions, refresh_s=60)
    try:
        assert await ranges.refresh() is True  # the first load, even of an empty table
        assert ranges.lookup("10.1.2.3") is None
        async with sessions() as session, session.begin():
            rows = [RangeRow("10.0.0.0/8", "wide.com"), RangeRow("10.1.0.0/16", "narrow.com", 0.9)]
            await store_ranges(session, rows, "merge", "test", datetime.now(UTC))
        assert await ranges.refresh() is True
        assert await ranges.refresh() is False  # nothing changed: no reload
        found = ranges.lookup("10.1.2.3")
        assert found is not None and (found.domain, found.confidence) == ("narrow.com", 0.9)
        async with sessions() as session, session.begin():
            assert await delete_ranges(session, ["10.1.0.0/16"]) == 1
        assert await ranges.refresh() is True
        found = ranges.lookup("10.1.2.3")
        assert found is not None and found.domain == "wide.com"
    finally:
        await engine.dispose()


async def test_the_cli_loads_good_rows_and_lists_bad_ones(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "ranges.csv"
    path.write_text(RANGES_CSV)
    monkeypatch.setenv("ABM_DATABASE_URL", sqlite_url)
    with pytest.raises(SystemExit) as exited:
        await asyncio.to_thread(cli.main, ["ip-ranges", "load", str(path), "--replace"])
    assert exited.value.code == 1  # some rows were bad
    out, err = capsys.readouterr()
    assert f"{path}:4: domain: not a domain name" in err
    assert "loaded 2 ranges (replace), skipped 1 bad rows" in out
    engine = db.create_engine(url=sqlite_url)
    ranges = CompanyRanges(db.create_sessionmaker(engine), refresh_s=60)
    try:
        await ranges.refresh()
        found = ranges.lookup("2001:db8:ac:ffff::1")
        assert found is not None and (found.domain, found.confidence) == ("acme.com", None)
    finally:
        await engine.dispose()

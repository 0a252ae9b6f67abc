"""Schemathesis drives every ingest operation from its OpenAPI document, against the real
service (a subprocess on the real broker and PostgreSQL): no 5xx, no crash, and every
response matches the documented status codes, content types and schemas.

Driven programmatically and derandomized in CI, as ``test_api_fuzz`` (ABM_FUZZ_RANDOM=1
explores new examples). Request bodies are documented by ``services.ingest.openapi_docs``,
so the generated batches hold Segment messages and events of our own schemas.
"""

from __future__ import annotations

import base64
import contextlib
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from services.kit import db
from services.kit.credentials import store_write_key
from tests.harness import Stack, wait_until_ready
from tests.integration import test_api_fuzz

pytestmark = pytest.mark.integration

DERANDOMIZE = test_api_fuzz.DERANDOMIZE
# More examples when exploring: ABM_FUZZ_RANDOM=1 ABM_FUZZ_EXAMPLES=300.
EXAMPLES = int(os.environ.get("ABM_FUZZ_EXAMPLES", test_api_fuzz.EXAMPLES))
TP2 = "/com.snowplowanalytics.snowplow/tp2"
KEY = "fuzz-key"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}


@pytest.fixture
async def ingest_url(services: Stack, pg_url: str) -> str:
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await store_write_key(session, KEY, "fuzz")
    await engine.dispose()
    services.start("ingest")
    await wait_until_ready(services.url("ingest"))
    return services.url("ingest")


def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode) -> set[int]:
    """Run the operation's examples; the status codes seen."""
    statuses: set[int] = set()
    # A batch answers 200 with the bad events listed (and dead-lettered), by design: the
    # rejection checks do not apply; no 5xx, documented codes and schemas do.
    excluded = [positive_data_acceptance, negative_data_rejection]

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=DERANDOMIZE,
    )
    def run(case: schemathesis.Case) -> None:
        _with_write_key(case)
        response = case.call_and_validate(headers=AUTH, timeout=10, excluded_checks=excluded)
        statuses.add(response.status_code)

    run()
    return statuses


def _with_write_key(case: schemathesis.Case) -> None:
    """Where the key is not the Basic auth header (Snowplow, pixels, the beacon), send it
    anyway, so that the generated events get past authentication."""
    if case.operation.path in (TP2, "/p.gif", "/i"):
        case.query = {**(case.query or {}), "k": KEY}
    if case.operation.path == "/v1/t" and isinstance(case.body, dict):
        case.body = {**case.body, "writeKey": KEY}


def test_every_ingest_operation_answers_within_its_contract(ingest_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{ingest_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {operation.path for operation in operations}
    assert {"/v1/batch", "/v1/events", "/v1/{call}", "/v1/t", "/p.gif", "/i", TP2} <= paths
    # The pixels read only their query: undocumented parameters would leave nothing to fuzz.
    for pixel, fields in (("/p.gif", {"url", "data"}), ("/i", {"e", "co", "cx", "ue_pr", "ue_px"})):
        documented = schema.raw_schema["paths"][pixel]["get"].get("parameters", [])
        assert {"k", *fields} <= {parameter["name"] for parameter in documented}, pixel
    seen = {(op.method.upper(), op.path): fuzz(op, GenerationMode.POSITIVE) for op in operations}
    for operation in operations:
        # Operations without parameters or a body have no invalid input to make.
        with contextlib.suppress(Unsatisfiable):
            fuzz(operation, GenerationMode.NEGATIVE)
    # The generated bodies got past authentication and the envelope checks: the fuzzer
    # reached per-event validation and the broker, not only the 4xx paths.
    for path in ("/v1/batch", "/v1/events", "/v1/{call}", "/v1/t", TP2):
        assert 200 in seen[("POST", path)], str(seen)

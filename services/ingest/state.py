"""What the ingest app holds for its lifetime, built in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.company_ranges import CompanyRanges
from services.ingest.identity import VisitorAccounts
from services.ingest.publishing import Publisher
from services.ingest.settings import IngestSettings
from services.ingest.write_keys import WriteKeys


@dataclass(frozen=True, slots=True)
class IngestState:
    settings: IngestSettings
    engine: AsyncEngine
    publisher: Publisher
    write_keys: WriteKeys
    visitors: VisitorAccounts
    ip_ranges: CompanyRanges

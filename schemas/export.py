"""Export the JSON Schemas of the event models; ``abm schemas export`` writes them.

The exported files are committed under ``schemas/json/`` and a test fails when they drift
from the models, so that consumers in other languages can rely on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.events import EVENT_ADAPTER, DeadLetter

JSON_DIR = Path(__file__).parent / "json"


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document, for every exported contract."""
    return {
        "event.schema.json": _document(EVENT_ADAPTER, "Event"),
        "dead_letter.schema.json": _document(TypeAdapter(DeadLetter), "DeadLetter"),
    }


def _document(adapter: TypeAdapter[Any], title: str) -> dict[str, Any]:
    schema = adapter.json_schema(mode="serialization")
    schema["title"] = title
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def export(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in schema_documents().items():
        path = directory / name
        path.write_text(render(document))
        written.append(path)
    return written

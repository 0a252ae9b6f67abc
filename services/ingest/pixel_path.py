"""`GET /p.gif` in plain ASGI, in front of routing.

Pixels are the highest-rate, lowest-value requests: each one pays here neither FastAPI's
route matching over every ingest route nor its dependency resolution, only the work of
the hit itself (``record_pixel_hit``, shared with the documented route). The answer is
the same as the route's: always the 43-byte GIF with no-cache headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest.pixel import GIF, NO_CACHE
from services.ingest.routes import record_pixel_hit

PATH = "/p.gif"
_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(GIF)).encode()),
    *((name.lower().encode(), value.encode()) for name, value in NO_CACHE.items()),
]


@dataclass(frozen=True, slots=True)
class _Route:
    """Stands in for the matched route in ``scope`` (latency is labelled by its path)."""

    path: str = PATH


_ROUTE = _Route()


class PixelFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state", {}).get("ingest") if _is_pixel(scope) else None
        if state is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE
        await record_pixel_hit(state, scope)
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        body = b"" if scope["method"] == "HEAD" else GIF
        await send({"type": "http.response.body", "body": body})


def _is_pixel(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["path"] == PATH and scope["method"] in ("GET", "HEAD")

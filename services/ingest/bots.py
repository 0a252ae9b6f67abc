"""Bot tagging by user agent, from the maintained Crawler-Detect lists (crawlerdetect).

Bots are tagged, never dropped: their events are kept, and downstream scoring ignores
them. Headless browsers count as bots; server-side SDKs that send no user agent do not.
"""

from __future__ import annotations

import functools

from crawlerdetect import CrawlerDetect


@functools.cache
def _detector() -> CrawlerDetect:
    return CrawlerDetect()  # compiles its pattern lists once, on first use


def is_bot(user_agent: str | None) -> bool:
    return bool(user_agent) and bool(_detector().isCrawler(user_agent))

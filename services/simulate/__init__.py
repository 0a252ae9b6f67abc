"""``abm simulate``: realistic ABM traffic through the ingest's Segment-compatible API.

``simulate(...)`` builds a seeded scenario (``scenario``: pure, no clock, no I/O) of
accounts moving through the six funnel stages over the ~120 days before ``now`` and
posts it to ``POST /v1/batch`` (``client``), returning a ``SimulationSummary``.
"""

from services.simulate.runner import SimulationSummary, simulate

__all__ = ["SimulationSummary", "simulate"]

"""The hospital-systems service: ``python -m engine serve`` (FastAPI + uvicorn; docs/api.md).

Same engine and store as the dashboard: the hospital folder is ingested into the store, the
schedules are the governance ledger's versions, and every action goes through
:mod:`engine.governance` (roles, audit). Public surface: :class:`ServiceParams`, :func:`create_app`.
"""
from engine.api.app import create_app
from engine.api.service import Service, ServiceParams

__all__ = ["Service", "ServiceParams", "create_app"]

"""The operator console: server-rendered pages at ``/console`` over the API's own queries.

See :mod:`api.console.routes` for the ledger and evidence pages, :mod:`api.console.markets`
for the trading and settlement pages, :mod:`api.console.aml` for the AML
pages (alerts, cases, the flow graph), and :mod:`api.console.session` for sign-in.
"""

from fastapi import APIRouter

from api.console import aml, markets, routes

router = APIRouter()
router.include_router(routes.router)
router.include_router(markets.router)
router.include_router(aml.router)
router.include_router(routes.fallback)  # last: it answers every other /console path

__all__ = ["router"]

"""The operator console: server-rendered pages at ``/console`` over the API's own queries.

See :mod:`api.console.routes` for the pages and :mod:`api.console.session` for sign-in.
"""

from api.console.routes import router

__all__ = ["router"]

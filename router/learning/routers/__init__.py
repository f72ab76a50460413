"""Routers by name: each predicts P(model solves query) for every model in the pool.

The contract, the registries and `make_router` live in lm_routing.learning.routers.base, re-exported here;
the saved form (`save_router` / `load_router`, without pickle) is lm_routing.saved.
"""

from lm_routing.errors import NotFittedError
from lm_routing.learning.routers.base import ROUTERS, SAVED_FORMS, Router, make_router, register_router

__all__ = ["ROUTERS", "SAVED_FORMS", "NotFittedError", "Router", "make_router", "register_router"]

"""`Resource`, `action` and `Action` (defined in `drizzle_gateway.contract.resources`)."""

from .contract.resources import Action, Resource, action

__all__ = ["Action", "Resource", "action"]

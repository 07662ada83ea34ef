"""Policy administration behind a small async interface: SQLite sample book or a core system over HTTP."""

from ivr.policyadmin.base import Conflict, PolicyAdmin, PolicyAdminError

__all__ = ["Conflict", "PolicyAdmin", "PolicyAdminError"]

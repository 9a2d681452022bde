"""Shared Context Server: one shared, durable, auditable memory for a team of AI agents."""

__version__ = "0.1.0"

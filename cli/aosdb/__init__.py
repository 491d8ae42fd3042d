"""aosdb: the governance database of an AI-agent platform (PostgreSQL-first)."""

__version__ = "0.1.0"

"""tokenmill: a token factory serving many LLMs to many tenants through an OpenAI-compatible API."""

__version__ = "0.1.0"

"""tokenmill's database: tenants, API keys and the usage ledger (SQLite by default, PostgreSQL by URL)."""

"""Tenants and their API keys: who is calling, and the limits that apply to them."""

"""Metering: prices, the usage ledger (one record per request) and the reports built from it."""

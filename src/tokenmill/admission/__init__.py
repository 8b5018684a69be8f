"""Admission control: RPM/TPM token buckets and budgets, in-process or shared through Redis."""

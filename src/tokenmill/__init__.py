"""tokenmill: a token factory serving many LLMs to many tenants through an OpenAI-compatible API."""

import os

# OpenMP threads spin between parallel regions. Spinning forever stalls badly when another busy
# process shares the cores (measured here: 30x slower steps on 2 cores), and never spinning costs
# ~25% throughput alone; a short spin keeps most of both. Must be set before PyTorch loads OpenMP.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

__version__ = "0.1.0"

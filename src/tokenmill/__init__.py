"""tokenmill: a token factory serving many LLMs to many tenants through an OpenAI-compatible API."""

import os

# OpenMP threads that spin while waiting stall badly when another busy process shares the cores
# (measured here: 30x slower steps on 2 cores). Must be set before PyTorch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

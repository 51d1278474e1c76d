"""HTTP API and operator console (FastAPI)."""

"""The Shared Context Server benchmark: ``python -m bench`` (see bench/README.md)."""

"""Use cases. Each takes a Principal, raises domain errors and publishes events after commit."""

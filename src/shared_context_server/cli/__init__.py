"""The command line: serve, db, keys, token."""

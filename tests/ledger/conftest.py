"""The ledger tests use the `bureau` fixture of tests/conftest.py."""

"""The test suite. Shared helpers live in tests.helpers; fixtures in tests/conftest.py."""

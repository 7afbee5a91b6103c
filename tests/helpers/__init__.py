"""What several test modules share that is not a fixture (fixtures live in tests/conftest.py): one module
per subject, imported as `from tests.helpers.<subject> import ...`. A test module never imports another."""

"""E2e fixtures: the installed system (`tests/e2e/installed.py`), shared by the modules."""

from tests.e2e.installed import main_job

__all__ = ["main_job"]

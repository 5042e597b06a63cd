"""The prediction tests' fabricated trained models (``tests/inference/conftest.py``), reused here."""

from tests.inference.conftest import _single_thread, trained_env, trained_template  # noqa: F401

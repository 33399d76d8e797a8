"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny random-weight checkpoints shaped like the default hub repositories, by stage."""
    pytest.importorskip("transformers")
    from tests.pipeline.annotate_fixtures import build_tiny_models

    return build_tiny_models(tmp_path_factory.getbasetemp() / "annotate-models")

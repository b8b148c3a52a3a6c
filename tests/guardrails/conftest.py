from __future__ import annotations

from typing import Any

import pytest

from guardrails.policy import load_tier_templates
from tests.guardrails.factories import TEMPLATES_DIR


@pytest.fixture(scope="session")
def templates() -> dict[str, dict[str, Any]]:
    return load_tier_templates(TEMPLATES_DIR)

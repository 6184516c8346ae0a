"""Shared fixtures; paths and helpers live in bundle_support."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_support import DATA


@pytest.fixture
def data_dir() -> Path:
    return DATA

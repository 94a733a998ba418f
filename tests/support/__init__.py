"""Helpers shared by the integration tests."""

import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]

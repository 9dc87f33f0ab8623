"""Test helpers for plugin authors: conformance suites a third-party plugin runs against itself."""

from __future__ import annotations

from .backends import BackendConformance

__all__ = ["BackendConformance"]

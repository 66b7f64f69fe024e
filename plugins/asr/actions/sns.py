"""SNS fixes."""

from __future__ import annotations

"""CloudWatch Logs fixes."""

from __future__ import annotations

"""AWS Config fixes."""

from __future__ import annotations

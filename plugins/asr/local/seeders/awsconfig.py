"""AWS Config misconfigurations."""

from __future__ import annotations

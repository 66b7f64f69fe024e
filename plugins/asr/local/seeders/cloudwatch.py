"""CloudWatch Logs misconfigurations."""

from __future__ import annotations

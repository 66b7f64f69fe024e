"""SQS misconfigurations."""

from __future__ import annotations

"""Conversion of DynamoDB values at the store boundary.

boto3 returns every number as `Decimal`; past the store they are `int` (integral
values) or `float`. On the way in, floats become `Decimal` because boto3 refuses
Python floats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    """Return `value` with every `Decimal` (at any depth) replaced by an int or a float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return {plain(item) for item in value}
    return value


def to_dynamo(value: Any) -> Any:
    """Return `value` ready for boto3's serializer: floats become `Decimal`, tuples lists."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: to_dynamo(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dynamo(item) for item in value]
    return value

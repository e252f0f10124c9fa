"""Scalars of the KPI API: BigInt for counts and money in minor units past 2^31."""

from __future__ import annotations

from typing import NewType

import strawberry

# GraphQL's Int stops at 2^31 - 1: 21,474,837 USD of pipeline in cents would not fit.
BigInt = NewType("BigInt", int)

BIG_INT_SCALAR = strawberry.scalar(
    name="BigInt",
    serialize=int,
    parse_value=int,
    description="An integer that may pass 2^31 (a JSON number, exact up to 2^53).",
)

SCALAR_MAP = {BigInt: BIG_INT_SCALAR}

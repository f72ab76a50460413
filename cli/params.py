"""Option types the CLI shares: finite numbers and seeds the libraries accept."""

from __future__ import annotations

import math

import click


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that refuses nan and inf (click's range lets nan through: every comparison with it is false)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


SEED = click.IntRange(0, 2**32 - 1)  # numpy and scikit-learn seeds: non-negative, 32 bits
FRACTION = FiniteFloatRange(0, 1)
NON_NEGATIVE = FiniteFloatRange(0, None)
POSITIVE = FiniteFloatRange(0, None, min_open=True)

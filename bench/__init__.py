"""Benchmarks (not tests): each module measures our path against a floor in the same run."""

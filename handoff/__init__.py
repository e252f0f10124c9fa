"""MQL → SQL handoff rules, scoring, SLAs and returns."""

"""Models of handoff (filled by later issues)."""

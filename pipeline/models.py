"""Models of pipeline (filled by later issues)."""

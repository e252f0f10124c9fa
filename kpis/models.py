"""Models of kpis (filled by later issues)."""

"""A test app that registers measures of its own, as handoff will (kpis.measures)."""

"""Pipeline data: leads, activities, deal stages, deals, stage history; ingestion."""

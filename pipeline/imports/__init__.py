"""CRM imports: CSV exports of HubSpot and Salesforce mapped to our records by per-tenant
presets, stored through the same service as the partner API (records_ingest)."""

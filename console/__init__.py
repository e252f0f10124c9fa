"""The reference web console (/app/) and the vendored GraphiQL: templates and static files."""

"""Pipeline: exact labels, model annotation, exporters, overlays, the demo and the CLI."""

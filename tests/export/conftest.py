import export_helpers  # noqa: F401  (puts the repo root on sys.path for the export package)

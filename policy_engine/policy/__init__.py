"""Policies: loading, validation, compilation, bounds, lint and the registry (imports language and base)."""

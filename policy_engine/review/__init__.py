"""Reviewing policies: tests, diffs, impact, scenarios and reports (imports portfolio and below)."""

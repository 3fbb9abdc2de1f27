"""The decision store and its segment codec (imports decide and below)."""

"""The policy language: expressions parsed, checked and turned into row code (imports only the base modules)."""

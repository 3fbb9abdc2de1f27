"""Deciding one client: input contract, decider, explanations, record builder (imports policy and below)."""

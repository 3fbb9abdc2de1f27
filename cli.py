"""Thin entry so ``python cli.py ...`` works in a checkout without installing."""

from policy_engine.cli import main

if __name__ == "__main__":
    main(prog_name="policy-engine")

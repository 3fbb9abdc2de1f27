"""``python -m policy_engine ...`` is the same command as ``policy-engine ...``."""

from .cli import main

main(prog_name="policy-engine")

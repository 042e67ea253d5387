"""`python -m harness`: the same as the `harness` command."""

import sys

try:
    from .cli import main
except ModuleNotFoundError as exc:  # `python -m harness` from a checkout, with a Python that lacks its dependencies
    if exc.name is None or exc.name.startswith("harness"):
        raise
    sys.exit(
        f"harness: this Python ({sys.executable}) lacks {exc.name}, which harness needs: install harness into it "
        "(python3 -m venv .venv && .venv/bin/pip install .) and run .venv/bin/harness"
    )

sys.exit(main())

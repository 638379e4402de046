"""keelson: the thin command-line front door. No logic lives here: it parses, loads, calls, renders."""

import os

__version__ = "0.1.0"

# Plain click help instead of typer's rich help formatter, which imports rich's markdown and syntax modules
# (~0.2 s) on every `--help` and usage error. Tables and progress still use rich. `TYPER_USE_RICH=1` brings it back.
os.environ.setdefault("TYPER_USE_RICH", "0")

"""keelson: the thin command-line front door. No logic lives here: it parses, loads, calls, renders."""

__version__ = "0.1.0"

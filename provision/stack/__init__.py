"""The Pulumi program's own parts: the stack's settings (settings.py) and the program (program.py), which
provision/__main__.py runs."""

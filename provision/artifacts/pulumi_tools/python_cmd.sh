#!/bin/sh
# keelson's PULUMI_PYTHON_CMD (environ.py): the Python that runs keelson ($KEELSON_PYTHON) for everything the
# Python language host runs (the program, `--version`), but its `-m pip list -v --format json` — which Pulumi
# packages are installed, asked on every up, preview and destroy — answered by installed.py, the same list
# without pip's imports (0.35-0.4 s of CPU on every run).
python=${KEELSON_PYTHON:-python3}
if [ "$*" = "-m pip list -v --format json" ]; then
    exec "$python" -P "${0%/*}/installed.py"
fi
exec "$python" "$@"

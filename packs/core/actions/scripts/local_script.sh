#!/bin/sh
# core.local_script: run the command line given as the first argument.
# Positional parameters arrive as arguments in `position` order.
set -eu
if [ "$#" -lt 1 ] || [ -z "$1" ]; then
    echo "usage: local_script.sh '<command line>'" >&2
    exit 2
fi
echo "running on $(hostname) in $(pwd)" >&2
exec /bin/sh -c "$1"

#!/bin/sh
# Build the Lambda code folder for lambda_schedule.py: Vigil and its run-time dependencies for
# Linux x86_64 / Python 3.11, the handler and the policy. Pulumi is not needed at run time.
set -eu
OUT=${1:-build/lambda}
POLICY=${2:-policy.yaml}
rm -rf "$OUT" && mkdir -p "$OUT"
# Vigil's own wheel (pure Python) first, then it and its base dependencies (read from its metadata,
# no extras: the run-time CLI) as Linux x86_64 / CPython 3.11 wheels.
WHEELS=$(mktemp -d)
pip wheel --quiet --no-deps -w "$WHEELS" .
pip install --quiet --target "$OUT" --platform manylinux2014_x86_64 --implementation cp --python-version 3.11 \
    --only-binary=:all: "$WHEELS"/vigil-*.whl
rm -rf "$WHEELS"
cp deploy/lambda_handler.py deploy/batch_handler.py "$OUT/"
cp "$POLICY" "$OUT/policy.yaml"
echo "Lambda code in $OUT"

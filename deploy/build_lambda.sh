#!/bin/sh
# Build the Lambda code folder for lambda_schedule.py: Vigil and its run-time dependencies for
# Linux x86_64 / Python 3.11, the handler and the policy. Pulumi is not needed at run time.
set -eu
OUT=${1:-build/lambda}
POLICY=${2:-policy.yaml}
rm -rf "$OUT" && mkdir -p "$OUT"
pip install --quiet --target "$OUT" --platform manylinux2014_x86_64 --implementation cp --python-version 3.11 \
    --only-binary=:all: 'boto3>=1.34,<2' 'pydantic>=2.6,<3' 'PyYAML>=6.0,<7' 'rich>=13.7,<16' 'jinja2>=3.1,<4' \
    'cryptography>=42,<50' 'schedule>=1.2,<2'
pip install --quiet --target "$OUT" --no-deps .
cp deploy/lambda_handler.py "$OUT/"
cp "$POLICY" "$OUT/policy.yaml"
echo "Lambda code in $OUT"

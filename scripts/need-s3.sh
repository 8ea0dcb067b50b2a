#!/usr/bin/env bash
# Installs moto_server (a real S3 protocol server, from PyPI's moto[server]) when missing:
# query/tests/media_s3.rs starts it to test the S3-compatible media store. It also
# brings boto3, which the test's harness uses to create the bucket and the access key.
set -euo pipefail
if command -v moto_server >/dev/null 2>&1 && python3 -c 'import boto3' 2>/dev/null; then exit 0; fi
python3 -m pip install --quiet --disable-pip-version-check 'moto[server]' \
  || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'moto[server]'
command -v moto_server >/dev/null
python3 -c 'import boto3'

#!/usr/bin/env bash
# Installs ffmpeg/ffprobe (Debian package) when missing: the catalog's media-job tests
# cut real HLS with it. Needs root (CI and developer machines run as root).
set -euo pipefail
if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null

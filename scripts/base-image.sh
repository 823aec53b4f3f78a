#!/usr/bin/env bash
# Builds the stand-in for python:3.12-slim from Debian's archive (no container registry needed,
# ENVIRONMENT.md) and imports it as smload/base:bookworm into the engine at DOCKER_HOST.
# Skipped when that engine already has the image (its data-root keeps it between runs).
#
#   scripts/base-image.sh            # DEBIAN_MIRROR=http://deb.debian.org/debian by default
set -euo pipefail

image=${SMLOAD_BASE_IMAGE:-smload/base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base-image: $image already present"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "base-image: debootstrap is missing (Debian: apt-get install debootstrap)" >&2; exit 1; }

rootfs=$(mktemp -d /var/tmp/smload-rootfs.XXXXXX)
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
  bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
# The machine's TLS trust (it may include a proxy's CA that pip needs to reach PyPI during the build).
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  --message "debootstrap minbase bookworm + python3 (stand-in for python:3.12-slim)" - "$image" >/dev/null
echo "base-image: built $image"

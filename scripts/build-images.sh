#!/usr/bin/env bash
# Builds the two container images FROM scratch: each holds its static
# binary, the CA bundle of the machine that builds it and, for the
# remediator, the journal's directory owned by nobody; no shell, no libc,
# no base image, so nothing is pulled from a registry.
#
#   scripts/build-images.sh VERSION [TOOL...]
#
# TOOL is the image builder's command line (default: podman, else docker),
# e.g. "podman --storage-driver=vfs --root DIR". The binaries are taken from
# $BIN_DIR (default: the repository's root, where `make build` puts them).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: build-images.sh VERSION [TOOL...]}
shift
tool=("$@")
if [ ${#tool[@]} -eq 0 ]; then
  if command -v podman >/dev/null; then tool=(podman); else tool=(docker); fi
fi
bin_dir=${BIN_DIR:-.}
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || { echo "build-images: $ca missing (install ca-certificates)" >&2; exit 1; }
for b in mamori_exporter mamori_remediator; do
  b="$bin_dir/$b"
  [ -x "$b" ] || { echo "build-images: $b missing: run make build" >&2; exit 1; }
  # A dynamically linked binary would not start in an empty image.
  if command -v readelf >/dev/null && LC_ALL=C readelf -l "$b" 2>/dev/null | grep -q 'Requesting program interpreter'; then
    echo "build-images: $b is dynamically linked (build it with CGO_ENABLED=0)" >&2
    exit 1
  fi
done

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
for role in exporter remediator; do
  root="$ctx/$role/rootfs"
  install -D -m 0644 "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
  install -D -m 0755 "$bin_dir/mamori_$role" "$root/bin/mamori_$role"
  if [ "$role" = remediator ]; then
    install -d -m 0700 "$root/var/lib/mamori"
    install -d -m 1777 "$root/tmp"
  fi
  "${tool[@]}" build --quiet -f "deploy/Containerfile.$role" -t "mamori/$role:$version" "$ctx/$role" >/dev/null
  echo "build-images: mamori/$role:$version"
done

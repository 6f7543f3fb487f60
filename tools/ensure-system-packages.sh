#!/usr/bin/env bash
# Make sure the system programs the guide needs are installed: graphviz (diagrams) and chromium with
# chromedriver (browser tests). Installs them with apt-get when it can (root, or password-less sudo);
# otherwise stops and prints the exact command to run.
set -euo pipefail

declare -A CHECK=([graphviz]="dot" [chromium]="chromium chromedriver")
declare -A DEBIAN=([graphviz]="graphviz" [chromium]="chromium chromium-driver")
declare -A BREW=([graphviz]="brew install graphviz" [chromium]="brew install --cask chromium chromedriver")

missing=()
for want in "$@"; do
  [[ -n "${CHECK[$want]:-}" ]] || { echo "unknown system package: $want" >&2; exit 2; }
  for cmd in ${CHECK[$want]}; do
    command -v "$cmd" >/dev/null 2>&1 || { missing+=("$want"); break; }
  done
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

debs=$(for m in "${missing[@]}"; do echo -n "${DEBIAN[$m]} "; done)
if command -v apt-get >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo"; else
    echo "Missing: ${missing[*]}. Install with:  sudo apt-get update && sudo apt-get install -y $debs" >&2
    exit 1
  fi
  echo "Installing ${missing[*]} with apt-get ..."
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $debs >/dev/null
  exit 0
fi
echo "Missing: ${missing[*]}. Install with your package manager, for example:" >&2
for m in "${missing[@]}"; do echo "  ${BREW[$m]}" >&2; done
exit 1

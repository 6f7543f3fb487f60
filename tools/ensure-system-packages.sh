#!/usr/bin/env bash
# Make sure the system programs the guide needs are installed: graphviz (diagrams) and chromium with
# chromedriver (browser tests), and Python's venv module (Debian ships it separately). Installs them with apt-get when it can (root, or password-less sudo);
# otherwise stops and prints the exact command to run.
set -euo pipefail

PYTHON=${PYTHON:-python3}
declare -A CHECK=([graphviz]="dot" [chromium]="chromium chromedriver" [python-venv]="")
declare -A DEBIAN=([graphviz]="graphviz" [chromium]="chromium chromium-driver"
                   [python-venv]="python3-venv python3-pip")
declare -A BREW=([graphviz]="brew install graphviz" [chromium]="brew install --cask chromium chromedriver"
                 [python-venv]="brew install python@3.11")

present() {  # is $1 installed?
  if [[ $1 == python-venv ]]; then
    "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1
    return
  fi
  local cmd
  for cmd in ${CHECK[$1]}; do command -v "$cmd" >/dev/null 2>&1 || return 1; done
}

missing=()
for want in "$@"; do
  [[ -v "CHECK[$want]" ]] || { echo "unknown system package: $want" >&2; exit 2; }
  present "$want" || missing+=("$want")
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

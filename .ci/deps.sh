#!/bin/sh
# Install the Debian packages sectorlab builds and tests with.  Non-interactive;
# uses sudo only when not already root.  With the argument "test", also the
# test-only peers: python3-torch, against which the interop tests check
# sectorlab's numbers (the program itself never needs it).
set -eu
PKGS="build-essential pkg-config libncurses-dev libopenblas-dev libpng-dev zlib1g-dev \
libcmocka-dev libdsdp-dev clang tmux"
if [ "${1:-}" = test ]; then PKGS="$PKGS python3 python3-torch"; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $PKGS

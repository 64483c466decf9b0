#!/usr/bin/env bash
# Installs the Debian 12 packages Detour needs to build, test and demo.
# Idempotent: only packages that are missing are installed.
set -eu
PKGS="
  make gcc clang llvm libclang-rt-14-dev pkg-config
  libyaml-dev libjansson-dev libcmocka-dev
  libxdp-dev libbpf-dev xxd liburcu-dev libmnl-dev
  iproute2 nftables ethtool bridge-utils
  netcat-openbsd curl iperf3 iputils-ping
  tcpdump tshark python3-scapy
  openvswitch-switch gnuplot-nox
"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages:$missing (run as root to install)" >&2
  exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing

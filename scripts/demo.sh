#!/usr/bin/env bash
# demo.sh - what `make demo` runs: builds the three-host lab of
# examples/three-hosts.yaml (prefix "demo"): guest A on h1, guest B on h3,
# A's traffic through the chain fw (l2 node fw1 on h2) -> ids (NSH node ids1
# on h3), back to h1, then to B. Sends pings and an HTTP transfer from A to
# B, and prints the trace, the paths, the Geneve tunnels of every host and
# every service node's counters. The lab is taken down on exit, whatever
# happens.
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${DETOUR_BIN:-$PWD/build/bin}
LAB=$BIN/detour-lab
CTL=$BIN/detourctl
FILE=${1:-examples/three-hosts.yaml}
P=demo
STATE=/run/detour/lab-$P
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/detour-demo.XXXXXX)
SRV=

cleanup() {
	trap - EXIT INT TERM
	[ -n "$SRV" ] && kill "$SRV" 2>/dev/null
	echo
	echo "== taking the lab down"
	"$LAB" --prefix "$P" down
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (it builds network namespaces)" >&2
	exit 1
fi
for b in detour-lab detourd detourctl detour-sn; do
	[ -x "$BIN/$b" ] || { echo "demo: $BIN/$b missing; run make" >&2; exit 1; }
done

say() { printf '\n== %s\n' "$*"; }
lab() { "$LAB" --prefix "$P" "$@"; }
ctl() { local h=$1; shift; "$CTL" --socket "/run/detour/$P-$h.sock" "$@"; }
hosts() { awk '$1 == "host" { print $2 }' "$STATE/names"; }

say "bringing up $FILE"
lab up "$FILE" || exit 1

say "ping A (h1) -> B (h3), through fw1 on h2 and ids1 on h3"
lab exec A ping -n -c 3 -i 0.2 192.168.1.2

say "HTTP A -> B: a 1 MiB file through the chain, across hosts"
mkdir -p "$TMP/www"
head -c 1048576 /dev/urandom >"$TMP/www/blob"
lab exec B "$PY" -m http.server 80 --bind 192.168.1.2 --directory "$TMP/www" \
	>"$TMP/http.log" 2>&1 &
SRV=$!
for _ in $(seq 100); do
	[ -n "$(lab exec B ss -Hltn 'sport = :80')" ] && break
	sleep 0.1
done
if lab exec A curl -sS --max-time 15 -o "$TMP/got" http://192.168.1.2/blob &&
	cmp -s "$TMP/got" "$TMP/www/blob"; then
	echo "received $(stat -c %s "$TMP/got") bytes, identical to the original"
else
	echo "HTTP transfer FAILED"
fi
kill "$SRV" 2>/dev/null
wait "$SRV" 2>/dev/null
SRV=

say "h1: detourctl trace A 'tcp 192.168.1.1:40000 > 192.168.1.2:80'"
ctl h1 trace A "tcp 192.168.1.1:40000 > 192.168.1.2:80"
say "h1: detourctl show paths"
ctl h1 show paths
say "h1: detourctl show flows (the connections pinned to the path)"
ctl h1 show flows
for h in $(hosts); do
	say "$h: detourctl show tunnels"
	ctl "$h" show tunnels
done

say "service node counters"
while read -r kind name mode; do
	[ "$kind" = node ] || continue
	case "$mode" in
	l2)
		c=$(lab exec "$name" nft list chain bridge detour forward | grep -o 'counter packets [0-9]* bytes [0-9]*' | head -n1)
		echo "$name (l2 bridge, nft forward): $c"
		;;
	l3)
		c=$(lab exec "$name" nft list chain inet detour forward | grep -o 'counter packets [0-9]* bytes [0-9]*' | head -n1)
		echo "$name (l3 router, nft forward): $c"
		;;
	nsh)
		pid=$(lab pid "$name") || continue
		rm -f "$STATE/$name.stats"
		kill -USR1 "$pid"
		for _ in $(seq 50); do [ -s "$STATE/$name.stats" ] && break; sleep 0.1; done
		echo "$name (detour-sn): $(tr -s ' \n' ' ' <"$STATE/$name.stats" 2>/dev/null)"
		;;
	esac
done <"$STATE/names"

#!/usr/bin/env bash
# demo.sh - what `make demo` runs: builds the one-host lab of
# examples/one-host.yaml (prefix "demo"), sends pings and an HTTP transfer
# from vm1 to vm2 through the chain fw (l2) -> ids (nsh) -> nat (l3), and
# prints the trace, the paths, the statistics and every service node's
# counters. The lab is taken down on exit, whatever happens.
set -u
cd "$(dirname "$0")/.."
BIN=${DETOUR_BIN:-$PWD/build/bin}
LAB=$BIN/detour-lab
CTL=$BIN/detourctl
FILE=${1:-examples/one-host.yaml}
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
ctl() { "$CTL" --socket "/run/detour/$P-h1.sock" "$@"; }

say "bringing up $FILE"
lab up "$FILE" || exit 1

say "ping vm1 -> vm2 (through the chain)"
lab exec vm1 ping -n -c 3 -i 0.2 192.168.1.2

say "HTTP vm1 -> vm2: a 1 MiB file through the chain"
mkdir -p "$TMP/www"
head -c 1048576 /dev/urandom >"$TMP/www/blob"
"$LAB" --prefix "$P" exec vm2 "$PY" -m http.server 80 --bind 192.168.1.2 --directory "$TMP/www" \
	>"$TMP/http.log" 2>&1 &
SRV=$!
for _ in $(seq 100); do
	[ -n "$(lab exec vm2 ss -Hltn 'sport = :80')" ] && break
	sleep 0.1
done
if lab exec vm1 curl -sS --max-time 15 -o "$TMP/got" http://192.168.1.2/blob &&
	cmp -s "$TMP/got" "$TMP/www/blob"; then
	echo "received $(stat -c %s "$TMP/got") bytes, identical to the original"
else
	echo "HTTP transfer FAILED"
fi
kill "$SRV" 2>/dev/null
wait "$SRV" 2>/dev/null
SRV=

say "detourctl trace vm1 'tcp 192.168.1.1:40000 > 192.168.1.2:80'"
ctl trace vm1 "tcp 192.168.1.1:40000 > 192.168.1.2:80"
say "detourctl show paths"
ctl show paths
say "detourctl show stats"
ctl show stats

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

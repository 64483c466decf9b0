#!/usr/bin/env bash
# ab.sh - the in-memory pipeline benchmark of this tree against another
# revision, measured in the same run: both builds' bench_pipeline run one
# after the other, ROUNDS times, and each figure is the best of its rounds
# (this VM shares its host, so one build's run can land in a slower stretch
# than the other's; interleaving and the best of several keep the
# comparison fair). The other revision is built in a temporary worktree.
#   bash bench/ab.sh [REV] [ROUNDS] [SCENARIOS]
#   defaults: REV = HEAD~1, ROUNDS = 3, SCENARIOS = "g2g chain new rules"
set -eu
cd "$(dirname "$0")/.."
rev=${1:-HEAD~1}
rounds=${2:-3}
scenarios=${3:-g2g chain new rules}
make -s build/bench/bench_pipeline
sha=$(git rev-parse --short "$rev")
wt=$(mktemp -d /tmp/detour-ab.XXXXXX)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
git worktree add --detach "$wt" "$rev" >/dev/null 2>&1
make -s -C "$wt" build/bench/bench_pipeline >/dev/null
old=$wt/build/bench/bench_pipeline new=build/bench/bench_pipeline
raw=$(mktemp)
for r in $(seq "$rounds"); do
	for b in old new; do
		bin=${!b}
		for s in $scenarios; do
			# "name ... flows Mpps ns" rows: keep name+flows as the key
			"$bin" --only "$s" 2>/dev/null | awk -v b="$b" '
				NF >= 4 && $(NF-1) ~ /^[0-9.]+$/ && $NF ~ /^[0-9.]+$/ && $1 != "scenario" {
					key = $1; for (i = 2; i <= NF - 2; i++) key = key " " $i
					print b "\t" key "\t" $(NF-1) }'
		done
	done
done >"$raw"
echo "in-memory pipeline, Mpps (best of $rounds interleaved rounds): $sha vs this tree"
awk -F'\t' '
	{ k = $2; if (!(k in seen)) { seen[k] = 1; order[n++] = k }
	  if ($3 > best[$1, k]) best[$1, k] = $3 }
	END { printf "%-44s %10s %10s %8s\n", "scenario flows", "before", "after", "ratio"
	      for (i = 0; i < n; i++) { k = order[i]; o = best["old", k]; w = best["new", k]
		  r = o > 0 ? sprintf("%.2f", w / o) : "-"
		  printf "%-44s %10.2f %10.2f %8s\n", k, o, w, r } }' "$raw"
rm -f "$raw"

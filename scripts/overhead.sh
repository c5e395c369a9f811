#!/usr/bin/env bash
# Overhead of the counting allocator against raw jemalloc and its peers,
# measured so that the figures survive a noisy, shared 2-core machine:
#
# 1. Instructions per Box<[u8; 64]> allocate+free pair, counted by gungraun
#    (Callgrind, the benchmark function only) at N and 2N pairs:
#    (I(2N) - I(N)) / N, with N = 100,000 (IR_PAIRS in
#    alloc-tracker/benches/overhead/common.rs). Exact and repeatable. The
#    programs are `cargo bench -p allocscope` targets; gungraun's runner is
#    installed under target/gungraun when missing (about 2 minutes).
# 2. Wall time of 2 threads each doing M pairs at once, programs interleaved
#    over R rounds after a warm-up round: median and min-max. The ratio to
#    the raw allocator the program wraps is taken per round, each program's
#    time over its reference's, run just before it (the machine's speed
#    drifts between runs; a pair of adjacent runs mostly shares it), and
#    given as the median of the R ratios with their min-max.
#
# Usage: scripts/overhead.sh [M=5000000] [R=7] [SET=counting]
# SET `counting`: the counting allocator against raw allocators and peers
# (docs/overhead.md); `profiling`: the heap profiler at the default rate and
# at rate 1 against raw jemalloc and dhat (docs/heap-profiling.md; use a
# smaller M there: dhat costs about 15,000 instructions per pair).
# Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

N=100000 # IR_PAIRS
M=${1:-5000000}
R=${2:-7}
command -v valgrind >/dev/null || { echo "overhead.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
if [ ! -x target/gungraun/bin/gungraun-runner ]; then
  cargo install --quiet --locked --version 0.20.0 --root target/gungraun gungraun-runner
fi
export PATH="$PWD/target/gungraun/bin:$PATH"

# The programs' executables, by name, for the wall-time runs.
declare -A exe
while IFS=$'\t' read -r name path; do
  exe[$name]=$path
done < <(cargo bench --quiet -p allocscope --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"name":"\(overhead_[a-z0-9_]*\)".*"executable":"\([^"]*\)".*/\1\t\2/p')

# gungraun's report of one program, kept: its Instructions line after each
# benchmark's `pairs ID:` line.
declare -A counted
count() { # program: runs its gungraun benchmarks once (in this shell, not a subshell)
  if [ -z "${counted[$1]:-}" ]; then
    counted[$1]=$(cargo bench --quiet -p allocscope --bench "overhead_$1" 2>/dev/null \
      | awk '/::pairs / { split($2, a, ":"); id = a[1] } /Instructions:/ { split($2, v, "|"); print id, v[1] }')
  fi
}
instructions() { # program -> "ID COUNT" lines
  printf '%s\n' "${counted[$1]}"
}

# allocscope reads ALLOCSCOPE_SAMPLE_RATE at start-up and then samples
# every thread: none of these programs may inherit it.
unset ALLOCSCOPE_SAMPLE_RATE

# Runs a program with a row's extra arguments; the pseudo-argument `exact`
# sets the sampling program's OVERHEAD_SAMPLE_RATE=1, and `every-thread`
# runs the program with ALLOCSCOPE_SAMPLE_RATE=524288 (allocscope samples
# every thread from the start, as a service would).
with_extra() { # extra program args...
  local extra=$1; shift
  local rate=524288 every=
  case " $extra " in *" exact "*) rate=1 ;; esac
  case " $extra " in *" every-thread "*) every=524288 ;; esac
  local args=${extra//exact/}
  args=${args//every-thread/}
  # shellcheck disable=SC2086
  if [ -n "$every" ]; then
    OVERHEAD_SAMPLE_RATE=$rate ALLOCSCOPE_SAMPLE_RATE=$every "$@" $args
  else
    OVERHEAD_SAMPLE_RATE=$rate "$@" $args
  fi
}

per_pair() { # program extra -> instructions per pair, one decimal
  local prog=$1 extra=$2 id
  case " $extra " in
    *" exact "*) id=exact ;;
    *" every-thread "*) id=every_thread ;;
    *--scoped*) id=scoped ;;
    *--grouped*) id=grouped ;;
    *) id=plain ;;
  esac
  instructions "$prog" | awk -v id="$id" -v n="$N" '
    $1 == id "_n" { a = $2 } $1 == id "_2n" { b = $2 }
    END { if (a == "" || b == "") exit 1; printf "%.1f", (b - a) / n }'
}

SET=${3:-counting}

# name | program | extra args | reference row for the ratio
if [ "$SET" = profiling ]; then
rows=(
  "raw jemalloc|raw_jemalloc||raw jemalloc"
  "allocscope, no sampling|allocscope_jemalloc||raw jemalloc"
  "allocscope sampling, 512 KiB|allocscope_sampled|--scoped|raw jemalloc"
  "allocscope, every thread sampled at 512 KiB (ALLOCSCOPE_SAMPLE_RATE)|allocscope_jemalloc|every-thread|raw jemalloc"
  "allocscope sampling, exact (rate 1)|allocscope_sampled|--scoped exact|raw jemalloc"
  "raw System|raw_system||raw System"
  "dhat heap profiler (over System)|dhat_heap||raw System"
)
else
rows=(
  "raw jemalloc|raw_jemalloc||raw jemalloc"
  "reference: 2 bare thread-local counters (allocs, bytes)|tls2_jemalloc||raw jemalloc"
  "reference: 4 bare thread-local counters (and frees, bytes freed)|tls4_jemalloc||raw jemalloc"
  "allocscope over jemalloc, no scope|allocscope_jemalloc||raw jemalloc"
  "allocscope over jemalloc, in measure + op|allocscope_jemalloc|--scoped|raw jemalloc"
  "allocscope over jemalloc, both threads in one group|allocscope_jemalloc|--grouped|raw jemalloc"
  "allocscope over jemalloc with owner tags, no scope|allocscope_tagged||raw jemalloc"
  "allocscope over jemalloc with owner tags, both threads in one group|allocscope_tagged|--grouped|raw jemalloc"
  "divan AllocProfiler over jemalloc|divan_jemalloc||raw jemalloc"
  "raw System|raw_system||raw System"
  "allocscope over System, no scope|allocscope_system||raw System"
  "stats_alloc over System|stats_alloc_system||raw System"
)
fi

declare -A instr wall ratio prog_of extra_of
for row in "${rows[@]}"; do
  IFS='|' read -r name prog extra _ <<< "$row"
  count "$prog"
  instr[$name]=$(per_pair "$prog" "$extra")
  prog_of[$name]=$prog
  extra_of[$name]=$extra
done

wall_ns() { # row name -> wall time of one run, ns
  with_extra "${extra_of[$1]}" "${exe[overhead_${prog_of[$1]}]}" threads "$M" 2>/dev/null
}

for round in $(seq 0 "$R"); do
  for row in "${rows[@]}"; do
    IFS='|' read -r name _ _ ref <<< "$row"
    if [ "$name" = "$ref" ]; then
      t=$(wall_ns "$name")
      r=1
    else
      tr=$(wall_ns "$ref")
      t=$(wall_ns "$name")
      r=$(awk -v t="$t" -v tr="$tr" 'BEGIN { print t / tr }')
    fi
    if [ "$round" -gt 0 ]; then # round 0 is the warm-up
      wall[$name]+="$t "
      ratio[$name]+="$r "
    fi
  done
done

stats() { # "v1 v2 ..." scale format -> "median min max", each divided by scale
  tr ' ' '\n' <<< "$1" | grep . | sort -g | awk -v s="$2" -v f="$3" '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf f " " f " " f, m / s, v[1] / s, v[NR] / s }'
}

echo "| global allocator | instructions per pair | vs reference | 2-thread wall, median ms (min-max) | vs reference, median of per-round ratios (min-max) |"
echo "|---|---:|---:|---:|---:|"
for row in "${rows[@]}"; do
  IFS='|' read -r name _ _ ref <<< "$row"
  read -r med lo hi <<< "$(stats "${wall[$name]}" 1e6 %.1f)"
  read -r rmed rlo rhi <<< "$(stats "${ratio[$name]}" 1 %.2f)"
  awk -v n="$name" -v i="${instr[$name]}" -v ri="${instr[$ref]}" -v m="$med" -v lo="$lo" -v hi="$hi" \
    -v r="$rmed" -v rlo="$rlo" -v rhi="$rhi" \
    'BEGIN { printf "| %s | %.1f | %+.1f | %.1f (%.1f-%.1f) | %sx (%s-%s) |\n", n, i, i - ri, m, lo, hi, r, rlo, rhi }'
done
echo
echo "Set $SET; N=$N pairs (gungraun, Callgrind, at N and 2N), 2 threads x M=$M pairs, $R rounds after a warm-up; $(nproc) cores, $(uname -sm), $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%F)."

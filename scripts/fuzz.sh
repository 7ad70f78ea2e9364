#!/bin/sh
# fuzz.sh: runs the libFuzzer targets built by `make fuzz`.
#
#   scripts/fuzz.sh [SECONDS]      each target in $FUZZ_BUILD (build-fuzz)
#                                  for SECONDS (default 10), one at a time,
#                                  niced, on a temporary copy of its seed
#                                  corpus tests/fuzz/corpus/<target>/ (the
#                                  checked-in corpus is not grown unless
#                                  FUZZ_KEEP=1 merges new inputs back), with
#                                  its dictionary and a -max_len that suits
#                                  it. Prints executions per target and
#                                  "fuzz: N executions, M crashes"; exits 1
#                                  on any crash. Crashers are kept in
#                                  $FUZZ_BUILD/crashes/<target>/: copy them
#                                  to tests/fuzz/regress/<target>/.
#   scripts/fuzz.sh --replay DIR   runs DIR/fuzz_* (tests/fuzz/replay.c
#                                  builds, see `make fuzz-replay`) over
#                                  tests/fuzz/regress/<target>/ and
#                                  tests/fuzz/corpus/<target>/; ends with
#                                  "N passed, M failed".
#
# FUZZ_TARGETS="fuzz_a fuzz_b" limits the run to those targets.
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

selected() { # $1 = target name
	[ -z "$FUZZ_TARGETS" ] && return 0
	for t in $FUZZ_TARGETS; do
		[ "$t" = "$1" ] && return 0
	done
	return 1
}

max_len() { # $1 = target name: input ceiling that suits its parser
	case "$1" in
	fuzz_mime|fuzz_search)			echo 16384 ;;
	fuzz_imap_parser|fuzz_quote)		echo 4096 ;;
	fuzz_config|fuzz_passdb|fuzz_mime_param|fuzz_rfc2047) echo 2048 ;;
	fuzz_lmtp|fuzz_pop3|fuzz_sasl|fuzz_utf7) echo 1024 ;;
	fuzz_seqset|fuzz_imap_date)		echo 256 ;;
	*)					echo 4096 ;;
	esac
}

replay() { # $1 = directory of replay binaries
	passed=0
	failed=0
	out=$(mktemp)
	for bin in "$1"/fuzz_*; do
		[ -x "$bin" ] || continue
		n=$(basename "$bin")
		selected "$n" || continue
		"$bin" "tests/fuzz/regress/$n" "tests/fuzz/corpus/$n" > "$out" 2>&1
		grep -v ' passed, ' "$out" | tail -20
		last=$(tail -1 "$out")
		echo "$last"
		p=$(echo "$last" | sed -n 's/.* \([0-9]*\) passed, .*/\1/p')
		f=$(echo "$last" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
		[ -n "$p" ] || f=$((${f:-0} + 1))	# the runner itself died
		passed=$((passed + ${p:-0}))
		failed=$((failed + ${f:-0}))
	done
	rm -f "$out"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

fuzz_one() { # $1 = binary, $2 = seconds; adds to execs, crashes
	n=$(basename "$1")
	work=$(mktemp -d)
	mkdir -p "$work/corpus" "$bdir/crashes/$n"
	if [ -d "tests/fuzz/corpus/$n" ]; then
		cp tests/fuzz/corpus/"$n"/* "$work/corpus/" 2>/dev/null
	fi
	dict=
	[ -f "tests/fuzz/$n.dict" ] && dict="-dict=tests/fuzz/$n.dict"
	nice "$1" -max_total_time="$2" -max_len="$(max_len "$n")" \
		-timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$bdir/crashes/$n/" $dict "$work/corpus" \
		> "$work/log" 2>&1
	rc=$?
	e=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
	if [ -z "$e" ]; then	# no final stats after a crash: last status
		e=$(grep -o '^#[0-9]*' "$work/log" | tail -1 | tr -d '#')
	fi
	e=${e:-0}
	if [ $rc -ne 0 ]; then
		crashes=$((crashes + 1))
		grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' \
			"$work/log" | head -20
		echo "$n: $e executions, CRASH (exit $rc)"
	else
		echo "$n: $e executions, 0 crashes"
	fi
	if [ "$FUZZ_KEEP" = 1 ] && [ $rc -eq 0 ]; then
		mkdir -p "tests/fuzz/corpus/$n"
		nice "$1" -merge=1 -max_len="$(max_len "$n")" \
			"tests/fuzz/corpus/$n" "$work/corpus" > /dev/null 2>&1
	fi
	execs=$((execs + e))
	rm -rf "$work"
}

if [ "$1" = "--replay" ]; then
	replay "${2:?usage: fuzz.sh --replay DIR}"
	exit $?
fi

secs=${1:-10}
bdir=${FUZZ_BUILD:-build-fuzz}
execs=0
crashes=0
targets=0
for bin in "$bdir"/fuzz_*; do
	[ -x "$bin" ] || continue
	selected "$(basename "$bin")" || continue
	targets=$((targets + 1))
	fuzz_one "$bin" "$secs"
done
if [ $targets -eq 0 ]; then
	echo "fuzz.sh: no targets in $bdir (run make fuzz)" >&2
	exit 1
fi
echo "fuzz: $targets targets, ${secs}s each"
echo "fuzz: $execs executions, $crashes crashes"
[ "$crashes" -eq 0 ]

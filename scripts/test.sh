#!/bin/sh
# test.sh: `make test` after the builds: unit tests and the integration
# suite, first on the normal build, then on the ASan+UBSan build. Ends with
# the summary line "N passed, M failed".
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
passed=0
failed=0
log=$(mktemp)

count() { # $1 = output file: adds its closing "N passed, M failed" line
	last=$(grep -E '[0-9]+ (passed|failed|errors?)' "$1" | tail -1)
	p=$(echo "$last" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+')
	f=$(echo "$last" | grep -Eo '[0-9]+ (failed|errors?)' |
		awk '{s+=$1} END {print s+0}')
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
}

run_unit() { # $1 = build dir
	for t in "$1"/tests/test_*; do
		[ -x "$t" ] || continue
		if ! "$t" > "$log" 2>&1; then
			cat "$log"
			grep -q ' passed, ' "$log" || failed=$((failed + 1))
		fi
		tail -1 "$log"
		count "$log"
	done
}

run_proto() { # $1 = heron binary
	HERON_BIN="$1" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		tests/proto > "$log" 2>&1
	rc=$?
	tail -40 "$log"
	if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
		echo "pytest exited with $rc"
		failed=$((failed + 1))
	fi
	count "$log"
}

run_suite() { # $1 = name, rest = command printing "N passed, M failed"
	name=$1
	shift
	"$@" > "$log" 2>&1
	rc=$?
	tail -15 "$log"
	if [ $rc -ne 0 ] && ! grep -Eq '[0-9]+ failed' "$log"; then
		echo "$name exited with $rc"
		failed=$((failed + 1))
	fi
	count "$log"
}

echo "== unit tests (build) =="
run_unit build
echo "== unit tests (ASan+UBSan) =="
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_unit build-asan
run_replay() { # $1 = build dir
	scripts/fuzz.sh --replay "$1/fuzz-replay" > "$log" 2>&1
	grep -v ' passed, ' "$log" | tail -20
	tail -1 "$log"
	count "$log"
}
echo "== fuzz regressions and corpora (build) =="
run_replay build
echo "== fuzz regressions and corpora (ASan+UBSan) =="
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_replay build-asan
echo "== integration tests (build/heron) =="
run_proto "$top/build/heron"
echo "== integration tests (build-asan/heron) =="
ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	run_proto "$top/build-asan/heron"
echo "== concurrency checker (build/heron) =="
run_suite concurrency env HERON_BIN="$top/build/heron" \
	/usr/bin/python3 tests/concurrency/checker.py --short
echo "== hostile clients (build/heron, short) =="
run_suite hostile env HERON_BIN="$top/build/heron" \
	/usr/bin/python3 tests/hostile/hostile.py
echo "== crash harness (build-asan/heron: fault hooks, short) =="
ASAN_OPTIONS=detect_leaks=0 run_suite crash env \
	HERON_BIN="$top/build-asan/heron" tests/crash/run --short
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

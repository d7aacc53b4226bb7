#!/usr/bin/env bash
# Source checks: banned C functions in the library (src/, outside src/cli), raw allocation
# outside src/core/mem.c, and clang-format conformance. Prints "N passed, N failed".
cd "$(dirname "$0")/.."
pass=0 fail=0
report() { # name, offending lines
  if [ -n "$2" ]; then echo "FAIL $1"; echo "$2" | head -20; fail=$((fail + 1))
  else echo "ok $1"; pass=$((pass + 1)); fi
}
mapfile -t lib < <(git ls-files 'src/*.c' 'src/*.h' | grep -v '^src/cli/')
report "no banned string functions in the library" \
  "$(grep -nE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|sscanf|gets)\(' "${lib[@]}" | grep -v snprintf)"
report "allocation only through sy__malloc and friends" \
  "$(grep -nE '(^|[^_a-z])(malloc|calloc|realloc|free)\(' "${lib[@]}" | grep -v '^src/core/mem.c')"
if command -v clang-format >/dev/null; then
  bad=""
  for f in $(git ls-files '*.c' '*.h' | grep -v '^bench/peers/node_modules/'); do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
  done
  report "clang-format clean" "$bad"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# Style rule 25: no sprintf, strcpy, strtok, atoi or raw printf in engine and plugin code.
src=${3:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src" || exit 1
hits=$(grep -nE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|gets)\s*\(|(^|[^a-z_])printf\s*\(' \
  engine/*/*.c engine/*/*.h plugins/*/*.c 2>/dev/null | grep -v '^\s*//' )
if [[ -n $hits ]]; then
  echo "banned calls:"; echo "$hits"; exit 1
fi
echo "1 passed, 0 failed"

#!/usr/bin/env bash
# Runs every recipe test of docs/recipes.md (tests/recipes/*.sh but lib.sh), each in its own
# process; exit status 1 if any failed. A test exiting 77 was skipped (a missing tool, outside
# CI). Names on the command line run only those: `tests/recipes/run.sh cmake meson`.
set -uo pipefail
cd "$(dirname "$0")/../.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in tests/recipes/*.sh; do
    n=$(basename "$f" .sh)
    case "$n" in lib | run) ;; *) names+=("$n") ;; esac
  done
fi
failed=() skipped=()
for n in "${names[@]}"; do
  start=$SECONDS
  bash "tests/recipes/$n.sh"
  rc=$?
  echo "== recipe $n: exit $rc in $((SECONDS - start)) s"
  case $rc in
    0) ;;
    77) skipped+=("$n") ;;
    *) failed+=("$n") ;;
  esac
done
[ ${#skipped[@]} -eq 0 ] || echo "recipes skipped: ${skipped[*]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "recipes FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "recipes: ${#names[@]} run, ${#skipped[@]} skipped, all passed"

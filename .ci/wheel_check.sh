#!/usr/bin/env bash
# The package as a user gets it: build the wheel and the sdist from this checkout, check
# their metadata (twine check), install the wheel with the cli and emulator extras into a
# fresh virtual environment, and from there, outside the checkout, run the README's
# example against the emulator as a process and the command line's main job.
# Usage: bash .ci/wheel_check.sh [PYTHON]   (PYTHON has the release extra; .venv's by default)
set -euo pipefail
cd "$(dirname "$0")/.."
checkout="$PWD"
python="${1:-$checkout/.venv/bin/python}"

work="$(mktemp -d)"
emulator_pid=""
trap '[ -z "$emulator_pid" ] || kill "$emulator_pid" 2>/dev/null; rm -rf "$work"' EXIT

# hatchling from the release extra: no isolated build environment to download.
"$python" -m build --no-isolation --outdir "$work/dist" "$checkout" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
"$python" -m twine check --strict "$work"/dist/*
wheels=("$work"/dist/recraft_async-*-py3-none-any.whl)
sdists=("$work"/dist/recraft_async-*.tar.gz)
[ "${#wheels[@]}" -eq 1 ] && [ "${#sdists[@]}" -eq 1 ] || { ls "$work/dist"; exit 1; }

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "${wheels[0]}[cli,emulator]"

# Outside the checkout: what runs is the installed wheel, never the source tree.
cd "$work"
"$work/venv/bin/python" - "$checkout/README.md" >example.py <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
print(re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[0], end="")
PY

# The README's offline run: the emulator as a process (its base URL on stdout, the
# sample images' URLs on stderr), the example with the emulator's key.
"$work/venv/bin/recraft-async" emulator --samples >emulator.out 2>emulator.err &
emulator_pid=$!
for _ in $(seq 300); do  # up to 30 s for the first line, the base URL
    [ -s emulator.out ] && break
    kill -0 "$emulator_pid" || { cat emulator.err; exit 1; }
    sleep 0.1
done
base_url="$(head -n 1 emulator.out)"
mapfile -t images < <(grep -o 'http://[^ ]*' emulator.err)
[ "${#images[@]}" -eq 3 ] || { cat emulator.err; exit 1; }
KIE_API_KEY=emulator-key KIE_BASE_URL="$base_url" \
    "$work/venv/bin/python" example.py "${images[@]}" >example.out
cat example.out
[ "$(grep -c "$base_url/" example.out)" -eq 3 ] || { echo "the README example failed" >&2; exit 1; }
kill "$emulator_pid"
emulator_pid=""

# The command line's main job, as the README shows it.
venv/bin/recraft-async samples
venv/bin/recraft-async upscale samples --emulator
pngs=(recraft-out/*.png)
[ "${#pngs[@]}" -eq 3 ] || { ls -R recraft-out; exit 1; }
echo "wheel check: ${wheels[0]##*/} and ${sdists[0]##*/} built, installed and run"

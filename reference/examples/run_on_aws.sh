#!/usr/bin/env bash
# Every command of the page "Run it on your AWS account", in order. Run it from the repository root, after
# `make setup`, with the virtual environment active. tests/test_deploy.py checks that this file parses, that
# each `python -m simulations` line parses with the command line's own parser, and that the files it names exist.
set -euo pipefail

# --8<-- [start:estimate]
python -m simulations deploy --estimate-only --region eu-west-2
# --8<-- [end:estimate]

# --8<-- [start:package]
make package  # writes build/lambda/fasterpay-lambda.zip
# --8<-- [end:package]

# --8<-- [start:deploy]
export FASTERPAY_BACKEND=aws FASTERPAY_ALLOW_REAL_AWS=1 FASTERPAY_REGION=eu-west-2
python -m simulations deploy --prefix fp-trial
# --8<-- [end:deploy]

# --8<-- [start:notebook]
jupyter nbconvert --to notebook --execute notebooks/01-tokenisation-vault.ipynb --output-dir build/aws-run
# --8<-- [end:notebook]

# --8<-- [start:teardown]
python -m simulations teardown --prefix fp-trial
python -m simulations teardown --prefix fasterpay  # the stack the notebook deployed
unset FASTERPAY_BACKEND FASTERPAY_ALLOW_REAL_AWS
# --8<-- [end:teardown]

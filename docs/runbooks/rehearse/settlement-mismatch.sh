# One stored settlement report is damaged; the replay must name the cycle and the position; the rebuild makes it clean.
python -m simulations replay --payments 30 --seed 7 --inject-mismatch --json --quiet

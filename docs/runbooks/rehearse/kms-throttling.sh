# KMS throttles and 5xx on 30% of attempts: nothing lost or doubled; KMS requests per payment with the cache and without it.
python -m simulations chaos --payments 20 --seed 3 --kms-fault-rate 0.3 --crash-rate 0 --min-crashes-per-point 0 --min-kms-faults 1 --compare-kms-cache --json --quiet

# Half the scheme submissions time out: each must end RJCT AB05/AB06 with its hold released, none lost or doubled.
python -m simulations chaos --payments 20 --seed 3 --gateway-timeout-rate 0.5 --crash-rate 0 --min-crashes-per-point 0 --min-scheme-timeouts 3 --json --quiet

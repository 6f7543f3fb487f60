# The primary region fails: quorum detection, fence, failover, in-flight payments resolved by UETR, failback.
python -m simulations drill region-outage --payments 30 --seed 7 --json
# The DR replay: every settlement cycle of the surviving region rebuilt from its entries and reconciled.
python -m simulations replay --after-drill region-outage --payments 30 --seed 7 --json

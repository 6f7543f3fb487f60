# Write units per partition key at 1,500 credits/s: one balance item is over the 1,000 WCU/s budget, eight shards are not.
python -m simulations hot-account --transfers 100 --shards 1,8 --rate 1500 --payers 30 --seed 7 --json

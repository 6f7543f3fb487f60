# Poison messages end in the DLQ after maxReceiveCount receives; after the fix they are redriven and processed once.
python -m simulations redrive-drill --messages 50 --poison 3 --seed 7

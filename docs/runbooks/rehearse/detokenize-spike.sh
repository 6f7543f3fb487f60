# The support desk detokenizes at 20 times its rate for 5 minutes; the guide's DetokenizeSpikeDetector must flag it within 2 minutes and nothing else.
python -m simulations detokenize-drill --seed 7 --json

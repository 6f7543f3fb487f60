# A scheme timeout storm burns the critical-path budget; the operations alarms (EMULATED) page; the runbook's remedy restores the burn under 1x.
python -m simulations slo-drill --payments 20 --hours 4 --seed 7 --json
# The same storm with only the SLO burn-rate pages paging (no cause alarm): later detection, more budget spent.
python -m simulations slo-drill --payments 20 --hours 4 --seed 7 --page-on slo --json

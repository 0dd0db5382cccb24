"""Progressive delivery: a canary version's traffic share raised step by step per region, judged
on the canary's own requests at every step, rolled back to 0 % on breach.

Written once against `meridian.targets.Target` (`set_canary_weight`, `canary_weights`): the
sandbox and AWS run the same machine. Pure parts (plan, weights, state decisions, the judge) are
plain functions tested on their own; `drive` is the only module that acts.
"""

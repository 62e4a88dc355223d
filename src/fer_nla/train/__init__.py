"""Training: one step (:mod:`.step`), one epoch and validation (:mod:`.loop`), the run's data
(:mod:`.run_data`), per-sample signals (:mod:`.signals`), the run folder (:mod:`.run_folder`),
``report.md`` (:mod:`.report`) and :func:`fer_nla.train.fit.fit`, which ties them together:
the one trainer behind ``fer-nla train`` and every benchmark.

The package re-exports nothing, so ``fer_nla.train.fit`` is always the module
(``from fer_nla.train.fit import fit`` for the function).
"""

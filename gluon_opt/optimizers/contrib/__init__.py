"""Young optimizers, kept apart until they have stood the test of time (as optax keeps its
``contrib``): Muon (``orthogonal``, 2024), Schedule-Free AdamW, SGD and the Schedule-Free
wrapper (``schedule_free``, 2024), SAM (``sam``, 2021), Sophia (``sophia``, 2023), AdEMAMix
(``ademamix``, 2025) and MARS-AdamW (``mars``, 2025). They are registered like the others
(``gluon_opt.muon``, ...) and exported by ``gluon_opt.optimizers``, which imports them.

Also ADOPT (``adopt``, 2024) and LaProp (``laprop``, 2020), relatives of Adam
that normalise the gradient before the momentum.
"""

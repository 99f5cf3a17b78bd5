"""Young optimizers, kept apart until they have stood the test of time (as optax keeps its
``contrib``): Muon (``orthogonal``, 2024), Schedule-Free AdamW (``schedule_free``, 2024), SAM
(``sam``, 2021), Sophia (``sophia``, 2023) and SOAP (``soap``, 2024). They are registered like
the others (``gluon_opt.muon``, ...) and exported by ``gluon_opt.optimizers``, which imports
them.
"""

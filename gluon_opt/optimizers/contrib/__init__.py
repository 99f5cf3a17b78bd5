"""Young optimizers, kept apart until they have stood the test of time (as optax keeps its
``contrib``): Muon (``orthogonal``, 2024), Schedule-Free AdamW, SGD and the Schedule-Free
wrapper (``schedule_free``, 2024), SAM (``sam``, 2021), Sophia (``sophia``, 2023), AdEMAMix
(``ademamix``, 2025), MARS-AdamW (``mars``, 2025), ADOPT (``adopt``, 2024), LaProp
(``laprop``, 2020), SOAP (``soap``, 2025), and the learning-rate-free Prodigy (2024),
D-Adaptation Adam and DoG (2023) in ``parameter_free``. They are registered like the others
(``gluon_opt.muon``, ...) and exported by ``gluon_opt.optimizers``, which imports them.
"""

"""``voiceface app``: a local web page to try the whole system (voice -> face, 3D shape, AMs, covariates, nearest
gallery faces; photo -> CEST reconstruction).

* ``runs``: which trained runs the page uses (a ``voiceface demo`` folder or run folders) and what is missing.
* ``media``: upload checks and decoding (size, duration, silence), PNG / mesh encodings for the page.
* ``inference``: the models, loaded once, and one function per tab (unit-testable without a browser or FastAPI).
* ``server``: the thin FastAPI layer (needs the ``app`` extra: ``pip install 'voiceface[app]'``).
"""

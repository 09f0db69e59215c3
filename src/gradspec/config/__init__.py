"""Every option of gradspec, declared once: one frozen, documented dataclass per stage
(``data``, ``model``, ``prompt``, ``capture``, ``spectra``, ``store``) and one per command that
composes them (``compute``, ``score``, ``selection``, ``analysis``, ``report``). ``fields`` turns
them into command-line options, experiment-file checks and manifest entries.

Nothing here imports torch, pandas or pyarrow.
"""

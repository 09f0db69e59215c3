"""gradspec: exact layer-wise gradient spectra of language models, per post-training sample.

The names below are imported on first use: ``import gradspec`` alone loads neither torch nor
pandas (``compute`` loads torch when it is first touched).
"""

from gradspec.lazy import lazy_exports

__version__ = "0.3.0"

__all__ = ["ComputeConfig", "PromptConfig", "Run", "__version__", "compute", "compute_many", "open_run"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ComputeConfig": "gradspec.config.compute",
        "PromptConfig": "gradspec.config.prompt",
        "compute": "gradspec.computation.run",
        "compute_many": "gradspec.computation.run",
        "Run": "gradspec.store.query",
        "open_run": "gradspec.store.query",
    },
)

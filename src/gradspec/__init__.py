"""gradspec: exact layer-wise gradient spectra of language models, per post-training sample."""

__version__ = "0.1.0"

from gradspec.compute import ComputeConfig, compute, compute_many  # noqa: E402
from gradspec.prompting import PromptConfig  # noqa: E402
from gradspec.store import Run, open_run  # noqa: E402

__all__ = ["ComputeConfig", "PromptConfig", "Run", "__version__", "compute", "compute_many", "open_run"]

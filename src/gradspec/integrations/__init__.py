"""gradspec inside other tools' loops: a ``transformers`` Trainer callback (``trainer``)."""

from gradspec.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {"GradspecCallback": "gradspec.integrations.trainer"})
__all__ = ["GradspecCallback"]

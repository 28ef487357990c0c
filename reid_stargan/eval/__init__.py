"""Re-ID evaluation: protocol metrics, retrieval (torch / FAISS), re-ranking, feature extraction."""

from .evaluator import evaluate, validate_inputs
from .metrics import eval_reference, metrics_from_ranks

__all__ = ["evaluate", "validate_inputs", "eval_reference", "metrics_from_ranks"]

"""When the RelatedPusher must refuse: the model gate and the index's recall gate, as a pure function."""

from __future__ import annotations


def refusal_reasons(
    model_blessed: bool, index_blessed: bool, index_recall: float, index_name: str = "ScaNN"
) -> list[str]:
    """Why a model/index pair must not be pushed; empty when it may be."""
    reasons = []
    if not model_blessed:
        reasons.append("the Evaluator did not bless the model (metric or change threshold failed)")
    if not index_blessed:
        reasons.append(
            f"the {index_name} index recall@k {index_recall:.3f} is under the indexer's min_recall"
        )
    return reasons

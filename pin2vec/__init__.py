"""The pipeline's custom artifact types under their ML Metadata type names (`pin2vec.RelatedCandidates`, ...).

TFX's Kubeflow entrypoint rebuilds a custom artifact from its type name used as an import path (the spec's
schema title, `<namespace>.<Type>`), so each pod must be able to `import pin2vec` and find the class here;
without it every step whose inputs or outputs include one of these fails on Kubeflow with
"ImportError: Could not import pin2vec.RelatedCandidates". Nothing in the project imports this module.
"""

from components.cooccurrence.component import RelatedCandidates
from components.related_evaluator.component import RelatedEvaluation
from components.scann_indexer.component import ScannIndex
from components.session_example_gen.component import Quarantine

__all__ = ["Quarantine", "RelatedCandidates", "RelatedEvaluation", "ScannIndex"]

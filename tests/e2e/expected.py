"""The pipeline's components (node ids), as both the local and the Kubeflow tests expect them."""

COMPONENTS = frozenset(
    {
        "SessionExampleGen",
        "StatisticsGen",
        "ImportSchemaGen",
        "ExampleValidator",
        "AnomalyGate",
        "Transform",
        "Trainer",
        "Evaluator",
        "ScannIndexer",
        "CooccurrenceCandidates",
        "ColdStartCandidates",
        "RelatedEvaluator",
        "RelatedPusher",
    }
)
COMPONENTS_WITH_COLLECTIONS = COMPONENTS | {"BoardCooccurrence"}  # a run given --collections
RESOLVER = "latest_blessed_model_resolver"

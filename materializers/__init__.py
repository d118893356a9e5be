"""ZenML materializers for the artifacts that should not be pickles."""

from materializers.confusion import ConfusionMatricesMaterializer
from materializers.feature_scaler import FeatureScalerMaterializer
from materializers.feature_set import FeatureSetMaterializer
from materializers.keras_model import TrainedModelMaterializer
from materializers.predictor import PredictorMaterializer

__all__ = [
    "ConfusionMatricesMaterializer",
    "FeatureScalerMaterializer",
    "FeatureSetMaterializer",
    "PredictorMaterializer",
    "TrainedModelMaterializer",
]

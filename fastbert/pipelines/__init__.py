"""The task pipelines beside fill-mask, a module each, over shared input checks, encoding and batching."""

from .base import TaskPipeline
from .feature_extraction import FeatureExtractionPipeline
from .text_classification import TextClassificationPipeline
from .token_classification import TokenClassificationPipeline

PIPELINES: dict[str, type[TaskPipeline]] = {pipeline.task: pipeline for pipeline in (
    TextClassificationPipeline, TokenClassificationPipeline, FeatureExtractionPipeline)}

__all__ = ["FeatureExtractionPipeline", "PIPELINES", "TaskPipeline", "TextClassificationPipeline",
           "TokenClassificationPipeline"]

"""Run tags the pipeline reads."""

FORCE_TAG = "usage_pipeline/force"
AS_OF_TAG = "usage_pipeline/as_of"

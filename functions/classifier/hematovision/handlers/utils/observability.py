"""The one place that configures Powertools: Logger, Metrics (EMF) and Tracer.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
(set in template.yaml); the defaults below apply elsewhere (tests, local server without them).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "hematovision"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "HematoVision"

logger = Logger(service=SERVICE, level=os.environ.get("LOG_LEVEL", "INFO").upper())
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)

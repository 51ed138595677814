"""The one place that configures Powertools: Logger and Metrics (EMF).

No Powertools Tracer: it imports the X-Ray SDK and botocore at init, about 0.3 s of every cold start (a
quarter of it, measured by `make bench`), for subsegments around a ~20 ms inference. The function still has
active tracing (template.yaml), so X-Ray shows each invocation's Init and Invocation segments.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
(set in template.yaml); the defaults below apply elsewhere (tests, local server without them).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "hematovision"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "HematoVision"

logger = Logger(service=SERVICE, level=os.environ.get("LOG_LEVEL", "INFO").upper())
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

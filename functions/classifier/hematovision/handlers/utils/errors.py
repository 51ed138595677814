"""Exception -> JSON error response: {"error": {"code", "message"}, "request_id"} with the error's status.

A ClientError keeps its own status and code; a route-parameter validation failure is a 400; an unknown route a
404; anything else a 500 with the same shape, logged with its stack trace and never returned with it.
"""

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.metrics import MetricUnit

from hematovision.errors import ClientError, ErrorCode
from hematovision.handlers.utils.observability import logger, metrics
from hematovision.models.output import ErrorBody, ErrorResponse


def request_id(app: APIGatewayRestResolver) -> str | None:
    try:
        return app.current_event.request_context.request_id
    except Exception:
        return None


def error_response(app: APIGatewayRestResolver, status: int, code: ErrorCode | str, message: str) -> Response:
    metrics.add_metric(name="ClientErrors" if status < 500 else "ServerErrors", unit=MetricUnit.Count, value=1)
    body = ErrorResponse(error=ErrorBody(code=code, message=message), request_id=request_id(app))
    return Response(status_code=status, content_type="application/json", body=body.model_dump_json())


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    """Installs the exception handlers on `app` (Powertools picks the closest class in the exception's MRO)."""

    @app.exception_handler(ClientError)
    def handle_client_error(error: ClientError) -> Response:
        logger.info("client error", extra={"code": error.code, "status": error.status})
        return error_response(app, error.status, error.code, error.message)

    @app.exception_handler(RequestValidationError)
    def handle_validation_error(error: RequestValidationError) -> Response:
        details = error.errors()
        first = details[0] if details else {}
        where = ".".join(str(part) for part in first.get("loc", ())) or "request"
        return error_response(
            app, 400, ErrorCode.INVALID_REQUEST, f"Invalid {where}: {first.get('msg', 'invalid value')}."
        )

    @app.not_found
    def handle_not_found(_: NotFoundError) -> Response:
        return error_response(app, 404, ErrorCode.NOT_FOUND, "No such route.")

    @app.exception_handler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(
            app, 500, ErrorCode.INTERNAL_ERROR, "Internal error; the request id identifies it in the logs."
        )


def unresolvable_event_response() -> dict:
    """The proxy response for an event the resolver could not route at all (not an API Gateway event)."""
    body = ErrorResponse(error=ErrorBody(code=ErrorCode.INTERNAL_ERROR, message="Internal error."), request_id=None)
    return {
        "statusCode": 500,
        "headers": {"Content-Type": "application/json"},
        "body": body.model_dump_json(),
        "isBase64Encoded": False,
    }

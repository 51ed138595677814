"""The one client-error type: a request or an image the client must fix.

Raised by the body parser, the image decoder and the classifier alike; the handler turns it into the JSON error
response, and a batch item that fails carries the same object. `status` is the HTTP status the error maps to
(400, 413, 415 or 422), `code` the API's stable error code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(eq=False)  # eq=False keeps exceptions hashable by identity, as Python's traceback machinery expects
class ClientError(ValueError):
    code: str
    message: str
    status: int = 400

    def __post_init__(self) -> None:
        super().__init__(self.message)

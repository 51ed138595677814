from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.analyze_response import AnalyzeResponse
from ...models.analyze_v1_analyze_post_files_body import AnalyzeV1AnalyzePostFilesBody
from ...models.classify_json_request import ClassifyJsonRequest
from ...models.error_response import ErrorResponse
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: ClassifyJsonRequest | AnalyzeV1AnalyzePostFilesBody | Unset = UNSET,
    annotate: bool | Unset = False,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    params: dict[str, Any] = {}

    params["annotate"] = annotate

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/analyze",
        "params": params,
    }

    if isinstance(body, ClassifyJsonRequest):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/json"
    if isinstance(body, AnalyzeV1AnalyzePostFilesBody):
        _kwargs["files"] = body.to_multipart()

        headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> AnalyzeResponse | ErrorResponse | None:
    if response.status_code == 200:
        response_200 = AnalyzeResponse.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorResponse.from_dict(response.json())

        return response_400

    if response.status_code == 403:
        response_403 = ErrorResponse.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = ErrorResponse.from_dict(response.json())

        return response_404

    if response.status_code == 413:
        response_413 = ErrorResponse.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = ErrorResponse.from_dict(response.json())

        return response_415

    if response.status_code == 422:
        response_422 = ErrorResponse.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = ErrorResponse.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = ErrorResponse.from_dict(response.json())

        return response_500

    if response.status_code == 502:
        response_502 = ErrorResponse.from_dict(response.json())

        return response_502

    if response.status_code == 503:
        response_503 = ErrorResponse.from_dict(response.json())

        return response_503

    if response.status_code == 504:
        response_504 = ErrorResponse.from_dict(response.json())

        return response_504

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[AnalyzeResponse | ErrorResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: ClassifyJsonRequest | AnalyzeV1AnalyzePostFilesBody | Unset = UNSET,
    annotate: bool | Unset = False,
) -> Response[AnalyzeResponse | ErrorResponse]:
    """Find every white cell in a whole-field photo, classify each, count them

     The photo: a whole field of a stained blood smear as it is (a microscope camera frame, or a phone
    held to the eyepiece, black circle included), with zero, one or several white cells, at 40x-100x.
    Returns each white cell's box [xmin, ymin, xmax, ymax] in the upright photo's pixels with its label,
    probabilities and uncertain flag (at most 64 listed; `truncated` says when more were found), the
    differential `counts` over every cell found, and the scale estimate (px_per_um). No white cell: 200
    with an empty list and a note. annotate=true adds the photo with labelled boxes (PNG, <= 1024 px, <=
    1 MB). Same upload forms and errors as /v1/classify; one call is one metered request.

    Args:
        annotate (bool | Unset): Add the photo with labelled boxes (base64 PNG). Default: False.
        body (ClassifyJsonRequest):
        body (AnalyzeV1AnalyzePostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AnalyzeResponse | ErrorResponse]
    """

    kwargs = _get_kwargs(
        body=body,
        annotate=annotate,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: ClassifyJsonRequest | AnalyzeV1AnalyzePostFilesBody | Unset = UNSET,
    annotate: bool | Unset = False,
) -> AnalyzeResponse | ErrorResponse | None:
    """Find every white cell in a whole-field photo, classify each, count them

     The photo: a whole field of a stained blood smear as it is (a microscope camera frame, or a phone
    held to the eyepiece, black circle included), with zero, one or several white cells, at 40x-100x.
    Returns each white cell's box [xmin, ymin, xmax, ymax] in the upright photo's pixels with its label,
    probabilities and uncertain flag (at most 64 listed; `truncated` says when more were found), the
    differential `counts` over every cell found, and the scale estimate (px_per_um). No white cell: 200
    with an empty list and a note. annotate=true adds the photo with labelled boxes (PNG, <= 1024 px, <=
    1 MB). Same upload forms and errors as /v1/classify; one call is one metered request.

    Args:
        annotate (bool | Unset): Add the photo with labelled boxes (base64 PNG). Default: False.
        body (ClassifyJsonRequest):
        body (AnalyzeV1AnalyzePostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AnalyzeResponse | ErrorResponse
    """

    return sync_detailed(
        client=client,
        body=body,
        annotate=annotate,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: ClassifyJsonRequest | AnalyzeV1AnalyzePostFilesBody | Unset = UNSET,
    annotate: bool | Unset = False,
) -> Response[AnalyzeResponse | ErrorResponse]:
    """Find every white cell in a whole-field photo, classify each, count them

     The photo: a whole field of a stained blood smear as it is (a microscope camera frame, or a phone
    held to the eyepiece, black circle included), with zero, one or several white cells, at 40x-100x.
    Returns each white cell's box [xmin, ymin, xmax, ymax] in the upright photo's pixels with its label,
    probabilities and uncertain flag (at most 64 listed; `truncated` says when more were found), the
    differential `counts` over every cell found, and the scale estimate (px_per_um). No white cell: 200
    with an empty list and a note. annotate=true adds the photo with labelled boxes (PNG, <= 1024 px, <=
    1 MB). Same upload forms and errors as /v1/classify; one call is one metered request.

    Args:
        annotate (bool | Unset): Add the photo with labelled boxes (base64 PNG). Default: False.
        body (ClassifyJsonRequest):
        body (AnalyzeV1AnalyzePostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AnalyzeResponse | ErrorResponse]
    """

    kwargs = _get_kwargs(
        body=body,
        annotate=annotate,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: ClassifyJsonRequest | AnalyzeV1AnalyzePostFilesBody | Unset = UNSET,
    annotate: bool | Unset = False,
) -> AnalyzeResponse | ErrorResponse | None:
    """Find every white cell in a whole-field photo, classify each, count them

     The photo: a whole field of a stained blood smear as it is (a microscope camera frame, or a phone
    held to the eyepiece, black circle included), with zero, one or several white cells, at 40x-100x.
    Returns each white cell's box [xmin, ymin, xmax, ymax] in the upright photo's pixels with its label,
    probabilities and uncertain flag (at most 64 listed; `truncated` says when more were found), the
    differential `counts` over every cell found, and the scale estimate (px_per_um). No white cell: 200
    with an empty list and a note. annotate=true adds the photo with labelled boxes (PNG, <= 1024 px, <=
    1 MB). Same upload forms and errors as /v1/classify; one call is one metered request.

    Args:
        annotate (bool | Unset): Add the photo with labelled boxes (base64 PNG). Default: False.
        body (ClassifyJsonRequest):
        body (AnalyzeV1AnalyzePostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AnalyzeResponse | ErrorResponse
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            annotate=annotate,
        )
    ).parsed

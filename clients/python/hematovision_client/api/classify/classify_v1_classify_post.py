from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.classify_json_request import ClassifyJsonRequest
from ...models.classify_response import ClassifyResponse
from ...models.classify_v1_classify_post_files_body import ClassifyV1ClassifyPostFilesBody
from ...models.error_response import ErrorResponse
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: ClassifyJsonRequest | ClassifyV1ClassifyPostFilesBody | Unset = UNSET,
    explain: bool | Unset = False,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    params: dict[str, Any] = {}

    params["explain"] = explain

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/classify",
        "params": params,
    }

    if isinstance(body, ClassifyJsonRequest):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/json"
    if isinstance(body, ClassifyV1ClassifyPostFilesBody):
        _kwargs["files"] = body.to_multipart()

        headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ClassifyResponse | ErrorResponse | None:
    if response.status_code == 200:
        response_200 = ClassifyResponse.from_dict(response.json())

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
) -> Response[ClassifyResponse | ErrorResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: ClassifyJsonRequest | ClassifyV1ClassifyPostFilesBody | Unset = UNSET,
    explain: bool | Unset = False,
) -> Response[ClassifyResponse | ErrorResponse]:
    """Classify one white-blood-cell photo

     The photo: ONE white cell, roughly centred, in a stained blood-smear frame like the bccd set's (a
    320x240 microscope frame, the cell about a third of its width). The model classifies the whole frame
    (model 1.2.0) or, when its card says so, a crop of fixed physical size centred on the white cell the
    localiser scores highest (`crop` says which); when the localiser finds more than one white cell the
    answer is flagged uncertain (multiple_cells: send the photo to /v1/analyze), and when it finds none,
    no_cell. Send the image as the raw body (Content-Type image/jpeg, image/png, image/webp, image/bmp,
    image/tiff, image/gif), as JSON {"image": "<base64>"}, or as multipart/form-data field `image`.

    Args:
        explain (bool | Unset): Add a class activation heatmap (base64 PNG). Default: False.
        body (ClassifyJsonRequest):
        body (ClassifyV1ClassifyPostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ClassifyResponse | ErrorResponse]
    """

    kwargs = _get_kwargs(
        body=body,
        explain=explain,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: ClassifyJsonRequest | ClassifyV1ClassifyPostFilesBody | Unset = UNSET,
    explain: bool | Unset = False,
) -> ClassifyResponse | ErrorResponse | None:
    """Classify one white-blood-cell photo

     The photo: ONE white cell, roughly centred, in a stained blood-smear frame like the bccd set's (a
    320x240 microscope frame, the cell about a third of its width). The model classifies the whole frame
    (model 1.2.0) or, when its card says so, a crop of fixed physical size centred on the white cell the
    localiser scores highest (`crop` says which); when the localiser finds more than one white cell the
    answer is flagged uncertain (multiple_cells: send the photo to /v1/analyze), and when it finds none,
    no_cell. Send the image as the raw body (Content-Type image/jpeg, image/png, image/webp, image/bmp,
    image/tiff, image/gif), as JSON {"image": "<base64>"}, or as multipart/form-data field `image`.

    Args:
        explain (bool | Unset): Add a class activation heatmap (base64 PNG). Default: False.
        body (ClassifyJsonRequest):
        body (ClassifyV1ClassifyPostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ClassifyResponse | ErrorResponse
    """

    return sync_detailed(
        client=client,
        body=body,
        explain=explain,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: ClassifyJsonRequest | ClassifyV1ClassifyPostFilesBody | Unset = UNSET,
    explain: bool | Unset = False,
) -> Response[ClassifyResponse | ErrorResponse]:
    """Classify one white-blood-cell photo

     The photo: ONE white cell, roughly centred, in a stained blood-smear frame like the bccd set's (a
    320x240 microscope frame, the cell about a third of its width). The model classifies the whole frame
    (model 1.2.0) or, when its card says so, a crop of fixed physical size centred on the white cell the
    localiser scores highest (`crop` says which); when the localiser finds more than one white cell the
    answer is flagged uncertain (multiple_cells: send the photo to /v1/analyze), and when it finds none,
    no_cell. Send the image as the raw body (Content-Type image/jpeg, image/png, image/webp, image/bmp,
    image/tiff, image/gif), as JSON {"image": "<base64>"}, or as multipart/form-data field `image`.

    Args:
        explain (bool | Unset): Add a class activation heatmap (base64 PNG). Default: False.
        body (ClassifyJsonRequest):
        body (ClassifyV1ClassifyPostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ClassifyResponse | ErrorResponse]
    """

    kwargs = _get_kwargs(
        body=body,
        explain=explain,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: ClassifyJsonRequest | ClassifyV1ClassifyPostFilesBody | Unset = UNSET,
    explain: bool | Unset = False,
) -> ClassifyResponse | ErrorResponse | None:
    """Classify one white-blood-cell photo

     The photo: ONE white cell, roughly centred, in a stained blood-smear frame like the bccd set's (a
    320x240 microscope frame, the cell about a third of its width). The model classifies the whole frame
    (model 1.2.0) or, when its card says so, a crop of fixed physical size centred on the white cell the
    localiser scores highest (`crop` says which); when the localiser finds more than one white cell the
    answer is flagged uncertain (multiple_cells: send the photo to /v1/analyze), and when it finds none,
    no_cell. Send the image as the raw body (Content-Type image/jpeg, image/png, image/webp, image/bmp,
    image/tiff, image/gif), as JSON {"image": "<base64>"}, or as multipart/form-data field `image`.

    Args:
        explain (bool | Unset): Add a class activation heatmap (base64 PNG). Default: False.
        body (ClassifyJsonRequest):
        body (ClassifyV1ClassifyPostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ClassifyResponse | ErrorResponse
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            explain=explain,
        )
    ).parsed

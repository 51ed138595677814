from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.batch_json_request import BatchJsonRequest
from ...models.batch_response import BatchResponse
from ...models.classify_batch_v1_classify_batch_post_files_body import ClassifyBatchV1ClassifyBatchPostFilesBody
from ...models.error_response import ErrorResponse
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: BatchJsonRequest | ClassifyBatchV1ClassifyBatchPostFilesBody | Unset = UNSET,
    explain: bool | Unset = False,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    params: dict[str, Any] = {}

    params["explain"] = explain

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/classify/batch",
        "params": params,
    }

    if isinstance(body, BatchJsonRequest):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/json"
    if isinstance(body, ClassifyBatchV1ClassifyBatchPostFilesBody):
        _kwargs["files"] = body.to_multipart()

        headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> BatchResponse | ErrorResponse | None:
    if response.status_code == 200:
        response_200 = BatchResponse.from_dict(response.json())

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
) -> Response[BatchResponse | ErrorResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: BatchJsonRequest | ClassifyBatchV1ClassifyBatchPostFilesBody | Unset = UNSET,
    explain: bool | Unset = False,
) -> Response[BatchResponse | ErrorResponse]:
    """Classify several photos, each answered on its own

     JSON {"images": ["<base64>", ...]} or multipart/form-data with several `image` fields; at most 16
    images and 6291456 bytes. A bad image yields an error entry for that item, not a failed batch.

    Args:
        explain (bool | Unset): Add class activation heatmaps. Default: False.
        body (BatchJsonRequest):
        body (ClassifyBatchV1ClassifyBatchPostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BatchResponse | ErrorResponse]
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
    body: BatchJsonRequest | ClassifyBatchV1ClassifyBatchPostFilesBody | Unset = UNSET,
    explain: bool | Unset = False,
) -> BatchResponse | ErrorResponse | None:
    """Classify several photos, each answered on its own

     JSON {"images": ["<base64>", ...]} or multipart/form-data with several `image` fields; at most 16
    images and 6291456 bytes. A bad image yields an error entry for that item, not a failed batch.

    Args:
        explain (bool | Unset): Add class activation heatmaps. Default: False.
        body (BatchJsonRequest):
        body (ClassifyBatchV1ClassifyBatchPostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BatchResponse | ErrorResponse
    """

    return sync_detailed(
        client=client,
        body=body,
        explain=explain,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: BatchJsonRequest | ClassifyBatchV1ClassifyBatchPostFilesBody | Unset = UNSET,
    explain: bool | Unset = False,
) -> Response[BatchResponse | ErrorResponse]:
    """Classify several photos, each answered on its own

     JSON {"images": ["<base64>", ...]} or multipart/form-data with several `image` fields; at most 16
    images and 6291456 bytes. A bad image yields an error entry for that item, not a failed batch.

    Args:
        explain (bool | Unset): Add class activation heatmaps. Default: False.
        body (BatchJsonRequest):
        body (ClassifyBatchV1ClassifyBatchPostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BatchResponse | ErrorResponse]
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
    body: BatchJsonRequest | ClassifyBatchV1ClassifyBatchPostFilesBody | Unset = UNSET,
    explain: bool | Unset = False,
) -> BatchResponse | ErrorResponse | None:
    """Classify several photos, each answered on its own

     JSON {"images": ["<base64>", ...]} or multipart/form-data with several `image` fields; at most 16
    images and 6291456 bytes. A bad image yields an error entry for that item, not a failed batch.

    Args:
        explain (bool | Unset): Add class activation heatmaps. Default: False.
        body (BatchJsonRequest):
        body (ClassifyBatchV1ClassifyBatchPostFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BatchResponse | ErrorResponse
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            explain=explain,
        )
    ).parsed

"""Request bodies (JSON forms). Raw binary and multipart uploads are described in the OpenAPI spec."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hematovision.limits import MAX_BATCH_ITEMS


class ClassifyJsonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"image": "/9j/4AAQSkZJRg..."}]})

    image: str = Field(description="The image file (JPEG, PNG, WebP, BMP, TIFF, GIF), base64-encoded.")
    filename: str | None = Field(default=None, max_length=255, description="Optional name, echoed back.")


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="The image file, base64-encoded.")
    filename: str | None = Field(default=None, max_length=255)


class BatchJsonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: list[str | BatchItem] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description=f"1 to {MAX_BATCH_ITEMS} images, each a base64 string or {{image, filename}}.",
    )

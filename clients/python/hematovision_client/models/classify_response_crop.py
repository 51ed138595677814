from enum import StrEnum


class ClassifyResponseCrop(StrEnum):
    CELL = "cell"
    FRAME = "frame"

    def __str__(self) -> str:
        return str(self.value)

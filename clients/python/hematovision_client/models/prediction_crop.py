from enum import StrEnum


class PredictionCrop(StrEnum):
    CELL = "cell"
    FRAME = "frame"

    def __str__(self) -> str:
        return str(self.value)

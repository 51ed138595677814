from enum import StrEnum


class ClassifyResponseCropRuler(StrEnum):
    BOX = "box"
    NONE = "none"
    RED_CELLS = "red_cells"

    def __str__(self) -> str:
        return str(self.value)

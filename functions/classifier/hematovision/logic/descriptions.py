"""One plain-language sentence per cell type, returned with every prediction."""

DESCRIPTIONS = {
    "EOSINOPHIL": (
        "Eosinophils are granulocytes with a bilobed nucleus and large orange-red granules, "
        "involved in allergic reactions and the defence against parasites."
    ),
    "LYMPHOCYTE": (
        "Lymphocytes are small cells with a round, dense nucleus filling most of the cell and a thin "
        "rim of blue cytoplasm; they carry the adaptive immune response (B, T and NK cells)."
    ),
    "MONOCYTE": (
        "Monocytes are the largest white blood cells, with a kidney-shaped or folded nucleus and grey-blue "
        "cytoplasm; they become macrophages and dendritic cells in tissue."
    ),
    "NEUTROPHIL": (
        "Neutrophils are the most common white blood cells, with a nucleus of 3-5 segments and fine pale "
        "granules; they are the first responders to bacterial infection."
    ),
}


def describe(label: str) -> str:
    return DESCRIPTIONS.get(label, f"{label.title()} (no description available).")

"""Tissues and materials of the phantom body with their physical properties per modality.

Values are textbook figures, chosen so that contrasts between tissues match real images:
- `mu_per_mm`: linear attenuation coefficient at an effective energy of about 60 keV (1/mm).
  Water is 0.0206/mm; cortical bone (1.9 g/cm³) about 0.06/mm; lung (0.26 g/cm³) about 0.0055/mm.
- `hu`: CT number in Hounsfield units (water 0, air -1000).
- `t1_ms`, `t2_ms`, `pd`: MR relaxation times at 1.5 T and proton density (0..1). Flowing blood and
  cortical bone have pd near 0 (flow void, no mobile protons).
- `echo`: ultrasound backscatter amplitude relative to liver (1.0); 0 is anechoic (fluid).
- `sound_attenuation`: ultrasound attenuation in dB/cm/MHz.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Material:
    name: str
    mu_per_mm: float
    hu: float
    t1_ms: float
    t2_ms: float
    pd: float
    echo: float
    sound_attenuation: float


_TABLE: tuple[Material, ...] = (
    #        name                 mu/mm    HU     T1    T2    PD    echo  dB/cm/MHz
    Material("air", 0.0, -1000.0, 0.0, 0.0, 0.0, 3.0, 20.0),
    Material("lung", 0.0055, -850.0, 1200.0, 30.0, 0.1, 3.0, 20.0),
    Material("fat", 0.0185, -100.0, 260.0, 80.0, 0.9, 1.4, 0.6),
    Material("muscle", 0.0215, 45.0, 900.0, 50.0, 0.8, 0.6, 1.1),
    Material("skin", 0.0220, 50.0, 800.0, 40.0, 0.7, 1.6, 1.5),
    Material("blood", 0.0216, 45.0, 1400.0, 250.0, 0.0, 0.05, 0.2),  # flowing: MR flow void
    Material("heart", 0.0216, 45.0, 1000.0, 55.0, 0.8, 0.7, 0.5),
    Material("liver", 0.0218, 60.0, 600.0, 45.0, 0.75, 1.0, 0.5),
    Material("spleen", 0.0217, 50.0, 1000.0, 60.0, 0.8, 0.9, 0.5),
    Material("kidney", 0.0215, 35.0, 1100.0, 90.0, 0.85, 0.7, 0.9),
    Material("renal_sinus", 0.0190, -60.0, 300.0, 80.0, 0.85, 2.2, 0.8),
    Material("bowel", 0.0208, 20.0, 900.0, 80.0, 0.8, 1.2, 0.8),
    Material("bowel_gas", 0.0, -1000.0, 0.0, 0.0, 0.0, 3.0, 20.0),
    Material("bladder", 0.0206, 5.0, 3000.0, 1500.0, 1.0, 0.0, 0.05),
    Material("grey_matter", 0.0213, 38.0, 1100.0, 100.0, 0.85, 0.6, 0.6),
    Material("white_matter", 0.0211, 28.0, 780.0, 80.0, 0.7, 0.8, 0.6),
    Material("csf", 0.0206, 5.0, 4000.0, 2000.0, 1.0, 0.0, 0.05),
    Material("cortical_bone", 0.0600, 1500.0, 1000.0, 1.0, 0.05, 4.0, 20.0),
    Material("trabecular_bone", 0.0300, 300.0, 350.0, 70.0, 0.8, 3.0, 10.0),
    Material("cartilage", 0.0225, 100.0, 1000.0, 40.0, 0.7, 0.3, 1.0),
    Material("fluid", 0.0206, 5.0, 3000.0, 1500.0, 1.0, 0.0, 0.05),
    Material("haemorrhage", 0.0223, 70.0, 900.0, 70.0, 0.85, 0.8, 0.3),
    Material("tumour_lytic", 0.0212, 40.0, 1100.0, 110.0, 0.85, 0.5, 0.8),
    Material("tumour_sclerotic", 0.0450, 900.0, 800.0, 10.0, 0.2, 3.5, 15.0),
    Material("nodule", 0.0214, 35.0, 900.0, 70.0, 0.8, 0.8, 0.8),
    Material("consolidation", 0.0200, 10.0, 900.0, 90.0, 0.85, 0.9, 0.8),
    Material("breast", 0.0210, 30.0, 1000.0, 60.0, 0.8, 1.5, 0.9),
    Material("thyroid", 0.0240, 100.0, 800.0, 60.0, 0.8, 1.3, 0.8),
    Material("titanium", 0.1200, 3071.0, 0.0, 0.0, 0.0, 5.0, 30.0),
    Material("cobalt_chrome", 0.8000, 3071.0, 0.0, 0.0, 0.0, 5.0, 30.0),
    Material("steel", 0.6000, 3071.0, 0.0, 0.0, 0.0, 5.0, 30.0),
    Material("polyethylene", 0.0190, -80.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    Material("gold", 1.5000, 3071.0, 0.0, 0.0, 0.0, 5.0, 30.0),
    Material("lead", 1.1000, 3071.0, 0.0, 0.0, 0.0, 5.0, 30.0),
)

MATERIALS: dict[str, Material] = {m.name: m for m in _TABLE}
# Integer ids for label maps: 0 is air. The order is fixed, so ids are stable across versions.
MATERIAL_IDS: dict[str, int] = {m.name: i for i, m in enumerate(_TABLE)}
MATERIAL_NAMES: tuple[str, ...] = tuple(m.name for m in _TABLE)


def material(name: str) -> Material:
    """Return the material called `name`, with a clear error for an unknown name."""
    try:
        return MATERIALS[name]
    except KeyError:
        raise ValueError(
            f"unknown material {name!r}; known materials: {', '.join(MATERIAL_NAMES)}"
        ) from None

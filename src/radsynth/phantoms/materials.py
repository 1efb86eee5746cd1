"""Tissues and materials of the phantom body with their physical properties per modality.

Values are textbook figures, chosen so that contrasts between tissues match real images:
- `mu_per_mm`: linear attenuation coefficient at the effective energy of a filtered diagnostic
  beam, about 45 keV (1/mm): water 0.0245/mm, cortical bone (1.92 g/cm³) 0.095/mm, lung
  (0.26 g/cm³) 0.0065/mm. At this energy bone stands out from soft tissue as on real films.
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
    Material("air", 0.0000, -1000.0, 0.0, 0.0, 0.0, 3.0, 20.0),
    Material("lung", 0.0065, -850.0, 1200.0, 30.0, 0.1, 3.0, 20.0),
    Material("fat", 0.0220, -100.0, 260.0, 80.0, 0.9, 1.4, 0.6),
    Material("muscle", 0.0256, 45.0, 900.0, 50.0, 0.8, 0.6, 1.1),
    Material("skin", 0.0262, 50.0, 800.0, 40.0, 0.7, 1.6, 1.5),
    Material("blood", 0.0257, 45.0, 1400.0, 250.0, 0.0, 0.05, 0.2),  # flowing: MR flow void
    Material("heart", 0.0257, 45.0, 1000.0, 55.0, 0.8, 0.7, 0.5),
    Material("liver", 0.0259, 60.0, 600.0, 45.0, 0.75, 1.0, 0.5),
    Material("spleen", 0.0258, 50.0, 1000.0, 60.0, 0.8, 0.9, 0.5),
    Material("kidney", 0.0256, 35.0, 1100.0, 90.0, 0.85, 0.7, 0.9),
    Material("renal_sinus", 0.0226, -60.0, 300.0, 80.0, 0.85, 2.2, 0.8),
    Material("bowel", 0.0248, 20.0, 900.0, 80.0, 0.8, 1.2, 0.8),
    Material("bowel_gas", 0.0000, -1000.0, 0.0, 0.0, 0.0, 3.0, 20.0),
    Material("bladder", 0.0245, 5.0, 3000.0, 1500.0, 1.0, 0.0, 0.05),
    Material("grey_matter", 0.0253, 38.0, 1100.0, 100.0, 0.85, 0.6, 0.6),
    Material("white_matter", 0.0251, 28.0, 600.0, 80.0, 0.7, 0.8, 0.6),
    Material("csf", 0.0245, 5.0, 4000.0, 2000.0, 1.0, 0.0, 0.05),
    Material("cortical_bone", 0.0950, 1500.0, 1000.0, 1.0, 0.05, 4.0, 20.0),
    Material("trabecular_bone", 0.0420, 300.0, 350.0, 70.0, 0.8, 3.0, 10.0),
    Material("cartilage", 0.0268, 100.0, 1000.0, 40.0, 0.7, 0.3, 1.0),
    Material("fluid", 0.0245, 5.0, 3000.0, 1500.0, 1.0, 0.0, 0.05),
    # Blood products: acute on CT (70 HU), late subacute on MR (extracellular methaemoglobin:
    # short T1, long T2, bright on T1, T2 and PD). The values of brain tissue it had before
    # (T1 900, T2 70) left an intracranial haemorrhage invisible on every sequence.
    Material("haemorrhage", 0.0265, 70.0, 300.0, 250.0, 0.9, 0.8, 0.3),
    Material("tumour_lytic", 0.0252, 40.0, 1100.0, 110.0, 0.85, 0.5, 0.8),
    Material("tumour_sclerotic", 0.0720, 900.0, 800.0, 10.0, 0.2, 3.5, 15.0),
    Material("nodule", 0.0255, 35.0, 900.0, 70.0, 0.8, 0.8, 0.8),
    Material("consolidation", 0.0238, 10.0, 900.0, 90.0, 0.85, 0.9, 0.8),
    Material("breast", 0.0250, 30.0, 1000.0, 60.0, 0.8, 1.5, 0.9),
    Material("thyroid", 0.0286, 100.0, 800.0, 60.0, 0.8, 1.3, 0.8),
    Material("titanium", 0.2000, 3071.0, 0.0, 0.0, 0.0, 5.0, 30.0),
    Material("cobalt_chrome", 1.5000, 3071.0, 0.0, 0.0, 0.0, 5.0, 30.0),
    Material("steel", 1.0000, 3071.0, 0.0, 0.0, 0.0, 5.0, 30.0),
    Material("polyethylene", 0.0226, -80.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    Material("gold", 3.0000, 3071.0, 0.0, 0.0, 0.0, 5.0, 30.0),
    Material("lead", 3.0000, 3071.0, 0.0, 0.0, 0.0, 5.0, 30.0),
    # Tendons, ligaments and menisci: dense collagen, dark on every MR sequence (short T2).
    Material("tendon", 0.0265, 90.0, 600.0, 5.0, 0.3, 1.8, 1.5),
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

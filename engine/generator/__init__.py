"""The seeded synthetic demo hospital.

``generate_hospital(GeneratorParams())`` builds a whole hospital folder in memory (cases,
rooms, surgeons, blocks, staffing, settings and the hidden truth); ``write_hospital`` writes it
whole-or-nothing. The generating model, its parameters and the published figures it is
calibrated to are described in ``data/GENERATOR.md``.

Everything is drawn from ``numpy.random.SeedSequence(seed)``: the same parameters always give
the same hospital, byte for byte. Each component (catalog, surgeons, patients, ...) has its own
child stream so that the parts stay independent of each other.

A package along the generator's parts: ``params`` (GeneratorParams and the constants), ``catalog``
(service lines and procedures), ``world`` (procedures, rooms, surgeons, block template),
``patients`` (patients, durations, booking estimates), ``days`` (the history's days as they ran),
``generate`` (:func:`generate_hospital`) and ``write`` (:func:`write_hospital`, :func:`write_frames`).
"""
from engine.generator.catalog import SERVICE_LINE_NAMES
from engine.generator.generate import generate_hospital
from engine.generator.params import EQUIPMENT, OUTPUT_FILES, GeneratorParams
from engine.generator.write import write_frames, write_hospital

__all__ = [
    "GeneratorParams",
    "generate_hospital",
    "write_hospital",
    "write_frames",
    "SERVICE_LINE_NAMES",
    "EQUIPMENT",
    "OUTPUT_FILES",
]

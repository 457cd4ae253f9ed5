"""Common random numbers: replication keys follow SeedSequence.spawn, draws are keyed by entity."""
from __future__ import annotations

import numpy as np

from engine.sim.rng import entity_keys, rep_keys, uniforms


def test_rep_keys_are_spawned_children_whatever_the_chunking() -> None:
    children = np.random.SeedSequence(42).spawn(10)
    want = np.array([c.generate_state(1, np.uint64)[0] for c in children], dtype=np.uint64)
    assert np.array_equal(rep_keys(42, 0, 10), want)
    assert np.array_equal(np.concatenate([rep_keys(42, 0, 3), rep_keys(42, 3, 10)]), want)


def test_uniforms_are_keyed_by_entity_not_position() -> None:
    reps = rep_keys(1, 0, 500)
    u = uniforms(reps, entity_keys(["C1", "C2", "C3"]), 1)
    v = uniforms(reps, entity_keys(["C3", "C9", "C1"]), 1)
    assert np.array_equal(u[:, 0], v[:, 2]) and np.array_equal(u[:, 2], v[:, 0])
    assert not np.array_equal(u[:, 0], uniforms(reps, entity_keys(["C1"]), 2)[:, 0])  # streams differ
    assert ((u > 0) & (u < 1)).all()
    flat = uniforms(rep_keys(2, 0, 2000), entity_keys([f"K{i}" for i in range(50)]), 3).ravel()
    assert abs(flat.mean() - 0.5) < 0.005 and abs(flat.std() - np.sqrt(1 / 12)) < 0.005
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.01

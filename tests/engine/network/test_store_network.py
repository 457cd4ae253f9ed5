"""A network ingested into PostgreSQL (COPY) reads back identical, site by site."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.hospital import load_hospital
from engine.ingest import ingest_network
from engine.network import load_network
from engine.store import Store
from tests.conftest import pg_private_schema


def test_network_round_trips_through_postgresql(tiny_network: Path, pg_url: str) -> None:
    with pg_private_schema("network_store") as url:
        store = Store(url)
        stored = ingest_network(tiny_network, store)
        sites = load_network(tiny_network).sites
        assert [hid for hid, _ in stored] == [s.folder.name for s in sites]
        for (hid, _), site in zip(stored, sites):
            want = load_hospital(site.folder)
            got = store.load_hospital(hid)
            for name, df in want.hospital.tables().items():
                pd.testing.assert_frame_equal(getattr(got.hospital, name), df, check_exact=True, obj=f"{hid} {name}")
            assert got.hospital.settings == want.hospital.settings
        store.close()

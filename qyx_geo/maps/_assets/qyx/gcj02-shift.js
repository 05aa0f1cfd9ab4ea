/* qyx_geo (MIT): while a GCJ-02 tile layer (e.g. Gaode) is on the map, move every vector layer
   and marker from WGS84 to GCJ-02 so they line up with it; put them back when it is removed.
   The offsets are a grid computed by qyx_geo.crs.wgs84_to_gcj02 and interpolated bilinearly. */
function qyxGcjShift(map, gcjLayers, grid) {
  "use strict";
  var active = 0;
  function offset(lat, lng) {
    var fx = (lng - grid.lon0) / grid.step, fy = (lat - grid.lat0) / grid.step;
    var ix = Math.max(0, Math.min(grid.nx - 2, Math.floor(fx)));
    var iy = Math.max(0, Math.min(grid.ny - 2, Math.floor(fy)));
    var tx = Math.max(0, Math.min(1, fx - ix)), ty = Math.max(0, Math.min(1, fy - iy));
    function at(values) {
      var i = iy * grid.nx + ix;
      return (values[i] * (1 - tx) + values[i + 1] * tx) * (1 - ty) +
             (values[i + grid.nx] * (1 - tx) + values[i + grid.nx + 1] * tx) * ty;
    }
    return [at(grid.dlat), at(grid.dlon)];
  }
  function shiftOne(ll) {
    var d = offset(ll.lat, ll.lng);
    return L.latLng(ll.lat + d[0], ll.lng + d[1]);
  }
  function shiftAll(lls) {
    return Array.isArray(lls) ? lls.map(shiftAll) : shiftOne(lls);
  }
  function skip(layer) {
    return gcjLayers.indexOf(layer) >= 0 || layer instanceof L.GridLayer ||
      layer instanceof L.DivOverlay;
  }
  function sync(layer) {
    if (skip(layer)) { return; }
    var want = active > 0;
    if (Boolean(layer._qyxWgs) === want) { return; }
    if (layer instanceof L.ImageOverlay) {
      /* an image moves by its corners: the offset is interpolated linearly in between */
      if (want) {
        layer._qyxWgs = layer.getBounds();
        layer.setBounds(L.latLngBounds(shiftOne(layer._qyxWgs.getSouthWest()),
                                       shiftOne(layer._qyxWgs.getNorthEast())));
      } else { layer.setBounds(layer._qyxWgs); layer._qyxWgs = null; }
    } else if (layer.getLatLngs) {
      if (want) { layer._qyxWgs = layer.getLatLngs(); layer.setLatLngs(shiftAll(layer._qyxWgs)); }
      else { layer.setLatLngs(layer._qyxWgs); layer._qyxWgs = null; }
    } else if (layer.getLatLng) {
      if (want) { layer._qyxWgs = layer.getLatLng(); layer.setLatLng(shiftOne(layer._qyxWgs)); }
      else { layer.setLatLng(layer._qyxWgs); layer._qyxWgs = null; }
    }
  }
  map.on("layeradd", function (e) {
    if (gcjLayers.indexOf(e.layer) >= 0) { active += 1; map.eachLayer(sync); } else { sync(e.layer); }
  });
  map.on("layerremove", function (e) {
    if (gcjLayers.indexOf(e.layer) >= 0) { active -= 1; map.eachLayer(sync); }
  });
  gcjLayers.forEach(function (layer) { if (map.hasLayer(layer)) { active += 1; } });
  if (active > 0) { map.eachLayer(sync); }
  map.qyxGcj = { offset: offset, active: function () { return active > 0; } };
}

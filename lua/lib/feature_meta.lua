-- feature_meta(meta, packed, names) -> what put_features stores as lineage: `packed` for every
-- feature, or, when the map has a "features" entry (name -> map of lineage of that feature only,
-- e.g. the transform that computed it), one msgpack map per name: the shared fields merged with
-- the feature's own.
local function feature_meta(meta, packed, names)
  local own = meta['features']
  if type(own) ~= 'table' then return packed end
  meta['features'] = nil
  local out = {}
  for i, name in ipairs(names) do
    local merged = {}
    for key, v in pairs(meta) do merged[key] = v end
    if type(own[name]) == 'table' then
      for key, v in pairs(own[name]) do merged[key] = v end
    end
    out[i] = cmsgpack.pack(merged)
  end
  return out
end

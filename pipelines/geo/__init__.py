"""Pure geometry, no Beam and no pixels: tile grids, areas of interest, the tile spec, ground truth from
polygons."""

"""What imagery is, in the words every part of the project shares: products (what a scene's values are),
the dtypes chips hold, and band roles (which band is which).

A model learned one product and must be fed the same: Planet's ``visual`` rendering (8-bit, the Kaggle
JPGs), ``analytic`` digital numbers (the Kaggle TIFs, ``_AnalyticMS`` scenes) or ``surface_reflectance``
(``_AnalyticMS_SR`` scenes, basemaps' "normalized analytic", Sentinel-2 L2A). Chips and scans store bands
in one order, red, green, blue and, when there is one, NIR, whatever order a file holds them in.
"""

VISUAL, ANALYTIC, SURFACE_REFLECTANCE, UNKNOWN = "visual", "analytic", "surface_reflectance", "unknown"
PRODUCTS = (VISUAL, ANALYTIC, SURFACE_REFLECTANCE, UNKNOWN)
#: The pixel types a chip or a scan tile may hold.
DTYPES = ("uint8", "uint16", "float32")

RED, GREEN, BLUE, NIR = "red", "green", "blue", "nir"
RGB = (RED, GREEN, BLUE)
#: Record band order: every chip and tile holds its bands in this order (NIR when the scene has it).
RGBN = (RED, GREEN, BLUE, NIR)

"""planet-tiles: satellite scenes -> chips -> Inception V3 labels -> per-tile Parquet for BigQuery."""

from setuptools import find_packages, setup

setup(
    name="planet-tiles",
    version="0.1.0",
    description="Watch the Amazon from space: chip scenes, train a multi-label classifier, scan regions.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(
        include=["pipelines", "pipelines.*", "planet_core", "planet_core.*", "planet_model", "planet_model.*"]
    ),
    # The queries, and Leaflet (which `make vendor` fetches from npm into the package before a build).
    package_data={"pipelines.analysis": ["sql/*.sql", "vendor/leaflet-*/*"]},
    install_requires=[
        # Versions seen installing together (Python 3.11, 2026-11).
        "apache-beam[gcp]==2.77.*",
        "tensorflow-cpu==2.21.*",
        "keras>=3.10,<4",
        "rasterio>=1.4,<1.5",
        "opencv-python-headless>=4.10",
        "numpy>=1.26,<2.5",
        "pyarrow>=16,<26",
        "protobuf>=4.25,<7",
        "google-cloud-storage>=2.16",
        "morecantile>=6,<8",
        "shapely>=2.0,<3",
        "pyproj>=3.6",
        "matplotlib>=3.8",
        "duckdb>=1.1,<3",  # local engine of the BigQuery queries (planet-tiles query)
        "sqlglot>=25,<31",  # transpiles them from BigQuery's dialect
        "pystac>=1.10,<2",  # STAC items and ItemCollections of scenes (--stac)
        # the scans table (Apache Iceberg): commits, snapshots, the embedded SQLite catalog, REST catalogs
        "pyiceberg[sql-sqlite,pyarrow]==0.12.*",
        "gcsfs>=2026.9",  # pyiceberg's file IO for gs:// warehouses (fsspec)
        "pyogrio>=0.10,<0.14",  # vector inputs in any format GDAL reads (--aoi, --zones, --truth)
        "scipy>=1.11,<2",  # the clearings' morphology (scipy.ndimage)
    ],
    extras_require={
        "gpu": ["tensorflow[and-cuda]==2.21.*"],
        # playwright drives the system's Chromium (Debian's chromium package) to check report.html.
        "test": [
            # pytest 9.2 ignores the test groups xdist 3.6 to 3.8 give (pytest-dev/pytest-xdist#1386): every
            # test of `make test` would be scheduled alone, its module's fixtures built again on each worker
            "pytest==9.1.1",
            "hypothesis>=6.100",
            "scikit-learn>=1.4",
            "playwright>=1.50,<2",
            "python-hcl2>=7,<9",
            "pytest-randomly>=3.15,<6",  # tests run in a random order: none may depend on another
            "pytest-xdist==3.6.1",  # make check and make test run the tests on every core
            # a Cloud Storage API server on localhost, for the gs:// tests
            "gcp-storage-emulator==2026.7.19",
            # the style and layer rules of `make lint` (ruff.toml, setup.cfg [importlinter])
            "ruff==0.17.6",
            "import-linter==2.17",
            # the exported and written GeoParquet, GeoPackage and FlatGeobuf files opened as GIS users open them
            "geopandas>=1.0,<2",
        ],
    },
    entry_points={"console_scripts": ["planet-tiles=pipelines.cli:main"]},
)

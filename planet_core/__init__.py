"""planet_core: what both packages stand on, and nothing of theirs: the storage layer (local paths and
``gs://`` alike), the one kind of user error, the 17 labels, and what a chip set folder holds.

``planet_model`` and ``pipelines`` import from here; this package imports neither (an import-linter
contract in ``setup.cfg`` holds it to that).
"""

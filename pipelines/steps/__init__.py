"""The Beam steps the pipelines share: the tile path, applying a bundle, the outcome ledger, commits,
options, notifications, per-tile alert state, streaming sinks, and a scan's set-up checks."""

"""Sync scorers for `core.sync.scoring` (each a `core.sync.scorers.base.SyncScorer`, registered in
`core.sync.scorers.registry`):

- `syncnet_v2.SyncNetV2Scorer`: syncnet_python's SyncNet (user-supplied syncnet_v2.model), the LSE reference;
- `color_expert.ColorExpertScorer`: Wav2Lip's lip-sync expert (user-supplied lipsync_expert.pth);
- `lite.LiteScorer`: our own shipped scorer (resources/models/sync_lite.*).

Use `core.sync.scoring.get_scorer(name_or_path)` rather than importing these directly: torch is only imported on
demand.
"""

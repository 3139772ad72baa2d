"""How sure are we that lips and voice agree: the sync concern, in one package.

- `scorers/`: the sync scorer plug-ins (SyncNet v2, the colour expert, the shipped lite scorer) and their registry;
- `scoring`: a clip's face windows + voice -> scorer -> distances -> LSE-D/LSE-C, offset, per-frame confidence;
- `lane`: the calibrated per-frame sync lane (confidence against the clip's own null, low frames, threshold);
- `av_offset`: the A/V offset from two witnesses (the scorer's distance curve and the mouth model's opening);
- `lane_adapt`: the lane's threshold for this face, learnt from the clip's own voice;
- `asd/`: the active-speaker networks and `asd.speaker`: which face speaks (per frame, per shot).

Kept light: importing `core.sync` imports none of its modules (torch and the scorers load on demand).
"""

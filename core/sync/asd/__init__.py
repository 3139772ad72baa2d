"""Active-speaker detection networks trained on thousands of faces (Light-ASD, LR-ASD; MIT): `net` (our modules,
the authors' checkpoints loaded exactly), `features` (their face crop and MFCCs), `weights` (the shipped
checkpoint), `head` (the sync heads of the `sync_asd` scorer) and `speaker` (which face speaks)."""

"""Model files and networks. `registry`: which files exist, where they live, how they are verified (torch-free, so
plug-ins can declare their files without importing torch); `load`: the official Wav2Lip and syncnet_python
networks from their checkpoints; `checkpoint`, `wav2lip`, `syncnet`, `lite_sync_net`, `mouth_net`: the pieces."""

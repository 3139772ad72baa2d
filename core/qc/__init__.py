"""Quality control of a dub: find the frames worth a look, the way the sync lane finds the frames out of sync.

What users of lip-sync tools complain about most, checked per frame against the original clip itself:
a **blurry** mouth, a **seam** or box round it, **flicker** / jitter, the mouth **open in silence** (lost detail
such as a beard shows as blur: the check covers the whole lower face). Plus a summary: PSNR and SSIM outside the
mask, SSIM and sharpness of the mouth against the original, LMD when the reference mouth is known.

One concept per module (Qt-free, like all of core):
- `regions`: the face crop and its parts (mouth box, mask, seam zone), placed from the face track;
- `metrics`: per-frame image measures (SSIM via scikit-image, PSNR, gradient energy, new edges, second
  differences, lip opening);
- `measure`: streams original and dub side by side and measures every frame;
- `rules`: the flags, with their thresholds and why (the module docstring; also docs/QC.md);
- `report`: `QCReport`, its summary, JSON/CSV, `run_qc(original, dub, ...)` and `qc_for_settings(settings, out)`.

Import the modules themselves (`from core.qc.report import run_qc`): the package imports nothing, so importing a
module of it never drags in the others (and no import cycle runs through the package).
"""

"""The offline default engine: audio -> mouth shapes -> retrieve the clip's own mouth textures -> warp -> patch.

Follows "Synthesizing Obama" (Suwajanakorn, Seitz, Kemelmacher-Shlizerman 2017), without any neural renderer:
1. Desired mouth shape per output frame: `core.mouth_shape.AudioToMouth` predicts a displacement from the
   speaker's neutral mouth; silent stretches of the voice (ctx.voice_active False) fade to the neutral, closed
   mouth over a few frames whatever the original video did, except just before speech starts (`ANTICIPATION_S`:
   the lips move before the sound) and never inside a range the editor closed (ctx.force_closed).
   `ClassicOptions.target_landmarks` ((N_out, 68, 2) frame coordinates) overrides the prediction (oracle tests,
   manual edits).
2. Texture library: one streaming pass over the source video keeps only canonical-aligned lower-face crops
   (`warp.CanonicalCrop`, ~1 IOD = 24..64 px) and their canonical landmarks.
3. Retrieval (`retrieval.select`): k nearest mouths, Viterbi for coherent runs, weighted-median blend.
4. Warp (`warp`): every blended candidate is warped piecewise-affinely onto the desired canonical shape; the
   current frame's own lower face is warped from its landmarks to the desired ones (jaw correction, so chin and
   cheeks move and the area below the chin follows); the retrieved mouth texture is colour-matched and blended
   over it. The patch's `mask_landmarks` are the desired landmarks, except that each jaw point takes the lower of
   the desired and original positions, so the shared blend mask also covers an original chin that hangs lower
   than the new one (no double chin when a mouth closes).
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import cv2
import numpy as np

from ... import mouth_shape as ms
from ...compose import JAW_OUTLINE, NOSE_BOTTOM, color_match, face_axes, mask_roi, ring_weights
from ...errors import LipDubError, MediaError, NoFaceError
from ...faces import geometry as geo
from ...media import iter_frames
from ...progress import CancelToken, ProgressFn, check, report
from .. import kernels, retrieval, warp
from ..base import DubContext, Engine, RenderedPatch
from ..teeth import OPEN_LO, TeethProxy, teeth_score
from .options import ClassicOptions

log = logging.getLogger(__name__)

# Points whose target the mouth model may move (mouth + lower jaw); all others stay where the tracker put them.
SHAPE_POINTS = ms.SHAPE_POINTS
INNER_JAW = np.arange(3, 14)
# The lips take their shape before the sound starts (and speakers often open the mouth before speaking): the model's
# prediction is kept this long before each onset. Chosen on cross-dubs of the mouth model's s1 validation clips
# (`tools.eval_crossdub --split val`: r 0.80 / 0.83 / 0.86 / 0.88 / 0.89 / 0.88 for 0-0.5 s): the shortest lead on
# the plateau; held-out and unseen-speaker figures in docs/MEASUREMENTS.md.
ANTICIPATION_S = 0.3
# crop pixels of texture computed beyond the mouth alpha's support: a cubic warp into the frame reads 4 x 4 source
# pixels, so a frame pixel the alpha reaches (at most 2 px beyond it) reads texture up to 3 px beyond it
TEXTURE_MARGIN = 4
TEXTURE_JPEG_QUALITY = 95    # warmed textures are kept compressed: ~20 KB instead of ~150 KB a frame at 720p
# a texture library larger than this keeps its crops as lossless PNGs (retrieval.TextureLibrary.packed): a 10 min
# 1080p clip's 300 MB become ~85 MB for ~1.35 ms of unpacking per candidate (~3.5% of its render); a minute of 720p
# (~60 MB) or 30 s of 1080p (~150 MB) stays unpacked, at no cost
PACK_LIBRARY_ABOVE_MB = 200.0


# ---------------------------------------------------------------------------------------------------------------
# desired shapes

def silence_weights(voice_active: np.ndarray, ramp: int = 3, lead: int = 0) -> np.ndarray:
    """(N,) in [0, 1]: 1 while the voice is active, 0 in silence, with linear ramps of `ramp` frames on each
    side of every transition (the mouth starts to open just before the sound and closes just after). `lead`: the
    frames before each onset that keep full weight too (the lips take their shape before the sound starts)."""
    v = np.asarray(voice_active, bool)
    n = len(v)
    if n == 0:
        return np.zeros(0, np.float32)
    idx = np.flatnonzero(v)
    if len(idx) == 0:
        return np.zeros(n, np.float32)
    # frames to the last active frame before / the next active frame after each frame (inf where there is none)
    pos = np.arange(n)
    j = np.searchsorted(idx, pos)
    since = np.where(j > 0, pos - idx[np.clip(j - 1, 0, len(idx) - 1)], np.inf)
    until = np.where(j < len(idx), idx[np.clip(j, 0, len(idx) - 1)] - pos, np.inf)
    dist = np.minimum(since, np.maximum(until - max(0, int(lead)), 0))
    if ramp <= 0:
        return (dist == 0).astype(np.float32)
    return np.clip(1.0 - dist / float(ramp + 1), 0.0, 1.0).astype(np.float32)


def clip_neutral_canon(canon: np.ndarray, present: np.ndarray, quantile: float = 0.25) -> np.ndarray:
    """(68, 2) canonical landmarks of the clip's closed/neutral mouth: median over its least-open frames."""
    pres = np.asarray(present, bool)
    c = canon[pres]
    if len(c) == 0:
        raise NoFaceError("No frame with a face to measure the neutral mouth from.")
    op = geo.mouth_opening(c)
    cut = np.quantile(op, quantile)
    return np.median(c[op <= cut], axis=0)


def canonicalize(landmarks: np.ndarray, present: np.ndarray, template: Optional[np.ndarray] = None):
    """Per-frame similarity (frame -> canonical, IOD units) and canonical landmarks. Absent frames: None / NaN."""
    pres = np.asarray(present, bool) & np.all(np.isfinite(landmarks), axis=(1, 2))
    if template is None:
        template = warp.stable_template(landmarks, pres)
    sims = [None] * len(landmarks)
    canon = np.full(landmarks.shape, np.nan, np.float64)
    for i in np.flatnonzero(pres):
        sims[i] = warp.align_to(landmarks[i], template)
        canon[i] = sims[i].fwd(landmarks[i])
    return sims, canon, template, pres


def transfer_mouth_shapes(x_landmarks: np.ndarray, x_present: np.ndarray, y_landmarks: np.ndarray,
                          y_present: np.ndarray, weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Frame-space target landmarks for clip X that reproduce clip Y's mouth movements (frame i of X gets Y's
    frame i): Y's canonical mouth displacement from Y's neutral, added to X's neutral, mapped into each X frame.
    Frames beyond Y's length or where Y has no face get X's neutral. Points outside `SHAPE_POINTS` keep X's
    tracked positions. `weights` (N_x,) scales the displacement (silence -> 0). Returns (N_x, 68, 2) float32."""
    sims_x, can_x, _, pres_x = canonicalize(x_landmarks, x_present)
    _, can_y, _, pres_y = canonicalize(y_landmarks, y_present)
    neu_x = clip_neutral_canon(can_x, pres_x)
    neu_y = clip_neutral_canon(can_y, pres_y)
    out = np.array(x_landmarks, np.float32, copy=True)
    for i in np.flatnonzero(pres_x):
        disp = np.zeros((68, 2))
        if i < len(can_y) and pres_y[i]:
            disp = can_y[i] - neu_y
        if weights is not None:
            disp = disp * float(weights[i])
        target = neu_x + disp
        out[i, SHAPE_POINTS] = sims_x[i].inv(target[SHAPE_POINTS])
    return out


def predicted_targets(ctx: DubContext, mouth_model: Optional[str] = None, keep_expression: bool = True) -> np.ndarray:
    """Desired frame-space landmarks (N_out, 68, 2): the voice through the audio->mouth model (`mouth_model`: a file;
    None: the shipped one), or, where the context carries the voice performer's video (ctx.performer), the
    performer's mouth retargeted to this actor (core.performer.drive) with the voice's prediction where the performer
    cannot be trusted. `keep_expression`: the actor's own slow lip expression is kept (core.expression)."""
    model = ms.AudioToMouth.load(mouth_model)
    n = ctx.num_output_frames
    disp = np.asarray(model.predict(ctx.wav, ctx.fps, n, head=ctx.mouth_head), np.float32)
    voiced = np.asarray(ctx.voice_active, bool)[:n]
    src = np.asarray(ctx.source_index, np.int64)[:n]
    # the neutral mouth from the source track itself (a looped/held schedule would weight frames unevenly)
    canon, _ = ms.normalize(np.asarray(ctx.landmarks, np.float32))
    present = np.asarray(ctx.present, bool) & np.isfinite(canon).all(axis=(1, 2))
    neutral = ms.clip_neutral(canon, present)
    disp, gain = ms.match_articulation(disp, neutral, canon, present, voiced)
    log.debug("articulation gain %.2f", gain)
    weights = silence_weights(voiced, lead=int(round(ANTICIPATION_S * ctx.fps)))
    disp = disp * weights[:len(disp), None, None]
    actor_shape = np.asarray(canon[:, SHAPE_POINTS], np.float64)
    if ctx.performer is not None:
        from ... import performer

        disp, gains = performer.drive(disp, ctx.performer, neutral, actor_shape[present], ctx.fps)
        log.debug("performer retargeting gains across %.2f, down %.2f", *gains)
    if ctx.force_closed is not None:                 # the editor's closed ranges stay closed, lead and ramps too
        disp = disp * ~np.asarray(ctx.force_closed, bool)[:len(disp), None, None]
    if keep_expression:
        from ... import expression

        actor = actor_shape[src] - np.asarray(neutral, np.float64)[None]
        disp = expression.keep_expression(disp, actor, neutral, ctx.fps, actor_valid=present[src])
    if ctx.performer is not None:       # last, so nothing added after it can make the mouth jump
        disp = performer.limit_steps(disp, performer.max_step(ctx.fps))
    return np.asarray(ms.target_landmarks(ctx.landmarks[src], ctx.present[src], disp, neutral=neutral), np.float32)


# ---------------------------------------------------------------------------------------------------------------
# patches

def support(weights: np.ndarray, margin: int) -> Optional[tuple]:
    """(x0, y0, x1, y1): the bounding box of `weights` > 0 grown by `margin` pixels and clipped to the image; None
    when it is the whole image or empty (then compute everything)."""
    ys = np.flatnonzero(weights.any(axis=1))
    xs = np.flatnonzero(weights.any(axis=0))
    if len(ys) == 0:
        return None
    h, w = weights.shape
    box = (max(0, int(xs[0]) - margin), max(0, int(ys[0]) - margin), min(w, int(xs[-1]) + 1 + margin),
           min(h, int(ys[-1]) + 1 + margin))
    return None if box == (0, 0, w, h) else box


def _same_source(a: DubContext, b: DubContext) -> bool:
    """Do two contexts share what `ClassicEngine.prepare_early` read (the picture, the face, the teeth choice)? The
    adaptation only adds the mouth head."""
    return (a.video_path == b.video_path and a.teeth_frame == b.teeth_frame and a.landmarks is b.landmarks
            and a.present is b.present)


def mask_landmarks_for(target: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Target landmarks whose jaw points (2..14) are pushed to the lower of target/original along the face's
    down axis, so the blend mask also hides an original chin lower than the new one."""
    out = np.array(target, np.float32, copy=True)
    down, _, _ = face_axes(target)
    jaw = np.arange(2, 15)
    t = np.asarray(target, np.float64)[jaw]
    o = np.asarray(original, np.float64)[jaw]
    lower = (o @ down) > (t @ down)
    out[jaw[lower]] = o[lower]
    return out


class ClassicEngine(Engine):
    """Retrieval + warp lip-sync from the clip's own mouth textures (no neural renderer, no GPU)."""

    name = "classic"
    frames_independent = True       # render_one only reads the prepared state (and the warmed textures)
    shares_decode = True            # the texture library's pass (prepare_early)

    def __init__(self, options: Optional[ClassicOptions] = None, *, models_dir: Optional[str] = None,
                 device: str = "cpu"):
        self.options = options or ClassicOptions()
        self.ctx: Optional[DubContext] = None
        self.teeth_proxy = None
        self.teeth_frame: Optional[int] = None
        self.teeth_strength: float = 1.0
        self.lib: Optional[retrieval.TextureLibrary] = None
        self._textures: dict = {}           # output frame -> JPEG of its retrieved texture (see warm)
        self._early: Optional[DubContext] = None   # the context prepare_early ran on
        self._adapted: Optional[tuple] = None      # (the context prepare_adapted ran on, its mouth targets)

    def precheck(self) -> None:
        """The audio->mouth model must be there and intact (checked before any tracking; loaded in prepare)."""
        ms.resolve_mouth_model(self.options.mouth_model)

    # -- prepare ---------------------------------------------------------------------------------------------
    def prepare_early(self, ctx: DubContext, progress: Optional[ProgressFn] = None,
                      cancel: Optional[CancelToken] = None, frames=None) -> None:
        """The texture library and the teeth proxy's source frame: neither needs the adapted mouth head, so the
        pipeline runs this while the adaptation runs. (Not the voice's phones: PocketSphinx holds the GIL.)"""
        lms = np.asarray(ctx.landmarks, np.float64)
        self.sims, self.canon, self.template, self.pres = canonicalize(lms, ctx.present) if np.any(ctx.present) \
            else (None, None, None, None)
        if self.pres is None or not self.pres.any():
            raise NoFaceError(f"No face was tracked in {ctx.video_path}: the classic engine has nothing to dub.")
        opts = self.options
        iods = geo.inter_ocular(lms[self.pres])
        ppi = float(opts.ppi or np.clip(opts.ppi_scale * np.median(iods), 24.0, opts.max_ppi))
        self.crop = warp.CanonicalCrop(ppi=ppi)
        self._build_library(ctx, progress, cancel, frames)
        self._early = ctx

    def prepare_adapted(self, ctx: DubContext, progress: Optional[ProgressFn] = None,
                        cancel: Optional[CancelToken] = None) -> None:
        """The mouth targets (the voice through the adapted mouth model): the pipeline runs this while the texture
        library is still being built."""
        self._adapted = None
        if self.options.target_landmarks is None:
            report(progress, "mouth", 0, 1)
            self._adapted = (ctx, predicted_targets(ctx, self.options.mouth_model, self.options.keep_expression))

    def prepare(self, ctx: DubContext, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> None:
        if self._early is None or not _same_source(self._early, ctx):
            self.prepare_early(ctx, progress, cancel)
        self._early = None
        adapted, self._adapted = self._adapted, None
        self.ctx = ctx
        n_out = ctx.num_output_frames
        src = np.asarray(ctx.source_index, np.int64)[:n_out]

        report(progress, "mouth", 0, 1)
        opts = self.options
        targets = (np.asarray(opts.target_landmarks, np.float32) if opts.target_landmarks is not None
                   else adapted[1] if adapted is not None and adapted[0] is ctx
                   else predicted_targets(ctx, opts.mouth_model, opts.keep_expression))
        if targets.shape != (n_out, 68, 2):
            raise LipDubError(f"Mouth targets have shape {targets.shape}, expected ({n_out}, 68, 2).")
        self.targets = targets
        report(progress, "mouth", 1, 1)
        check(cancel)

        # desired canonical shapes in each output frame's own canonical space
        valid = np.zeros(n_out, bool)
        tcan = np.zeros((n_out, 68, 2))
        for o in range(n_out):
            s = src[o]
            if 0 <= s < len(self.pres) and self.pres[s] and np.all(np.isfinite(targets[o])):
                tcan[o] = self.sims[s].fwd(targets[o])
                valid[o] = True
        self.valid = valid
        self.target_canon = tcan
        self.selection = retrieval.select(self.lib, tcan, valid, k=opts.k, blend=opts.blend, sigma=opts.sigma,
                                          jump=opts.jump, exclude_near=opts.exclude_near, query_frames=src)
        # fixed triangulation of the canonical crop (template with the mouth slightly open + crop border)
        w, h = self.crop.size
        self._cborder = warp.boundary_points(-1.0, -1.0, float(w), float(h), per_side=3)
        topo = warp.topology_points(self.template)[warp.WARP_POINTS]
        self._ctris = warp.triangulate(np.concatenate([self.crop.to_px(topo), self._cborder]))
        # fixed triangulation of the frame-space jaw correction: template + a canonical rectangle that holds
        # every frame's blend mask (its corners are mapped into each frame and stay fixed)
        self._fborder = self._warp_rect(ctx, src, valid)
        self._ftris = warp.triangulate(np.concatenate([topo, self._fborder]))
        self._setup_teeth(ctx)

    def _warp_rect(self, ctx: DubContext, src: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Border points (canonical units) of the region the jaw correction may change: the lower-face outline
        of the template, every target and every original, grown by the mask's dilation, feather and extents."""
        outline = np.concatenate([JAW_OUTLINE, NOSE_BOTTOM])
        pts = [self.template[outline]]
        pts.append(self.target_canon[valid][:, outline].reshape(-1, 2))
        pts.append(self.canon[src[valid]][:, outline].reshape(-1, 2))
        pts = np.concatenate(pts)
        m = ctx.mask
        grow = max(0.0, m.dilation) + 3.0 * max(0.0, m.feather) / 2.56 + 0.15
        x0 = pts[:, 0].min() - grow - max(0.0, m.extent_down)
        x1 = pts[:, 0].max() + grow + max(0.0, m.extent_down)
        y0 = pts[:, 1].min() - grow - max(0.0, m.extent_up)
        y1 = pts[:, 1].max() + grow + max(0.0, m.extent_down)
        return warp.boundary_points(x0, y0, x1, y1, per_side=4)

    def _build_library(self, ctx: DubContext, progress, cancel, share=None) -> None:
        n_src = len(self.pres)
        idx = np.flatnonzero(self.pres)
        w, h = self.crop.size
        cap = min(self.options.max_library, max(64, int(self.options.max_library_mb * 2 ** 20 // (w * h * 3))))
        stride = max(1, int(np.ceil(len(idx) / float(cap))))   # long clips: every stride-th face frame
        keep = np.zeros(n_src, bool)
        keep[idx[::stride]] = True
        rows = int(keep.sum())
        self.lib = retrieval.TextureLibrary(self.crop, capacity=rows,
                                            packed=rows * w * h * 3 > PACK_LIBRARY_ABOVE_MB * 2 ** 20)
        want_teeth = ctx.teeth_frame
        if want_teeth is not None and not (0 <= int(want_teeth) < n_src and self.pres[int(want_teeth)]):
            log.warning("Teeth frame %s has no tracked face: choosing one automatically.", want_teeth)
            want_teeth = None
        best_score, best = -1.0, None

        open_iod = geo.mouth_opening(self.canon)      # canonical: already in IOD units
        n = 0

        def decode(start: int):
            return iter_frames(ctx.video_path, start=start, stop=n_src, backend="auto")

        # the frames the adaptation's scoring pass decodes, when it runs (the same decoder from the start)
        frames = decode(0) if share is None else share.frames(n_src, decode)
        try:
            for i, frame in enumerate(frames):
                if keep[i]:
                    self.lib.add(i, self.crop.extract(frame, self.sims[i]), self.canon[i])
                if self.pres[i]:
                    if want_teeth is not None:
                        if i == int(want_teeth):
                            best = (i, frame.copy())
                    elif open_iod[i] >= OPEN_LO:
                        sc = teeth_score(frame, ctx.landmarks[i])
                        if sc > best_score:
                            best_score, best = sc, (i, frame.copy())
                n = i + 1
                if i % 16 == 0:
                    report(progress, "library", i, n_src)
                    check(cancel)
        finally:
            frames.close()
        if share is not None:
            log.debug("texture library: %d of %d frames from the scoring pass", share.shared, n_src)
        report(progress, "library", n_src, n_src)
        if n == 0:
            raise MediaError(f"Could not decode any frame of {ctx.video_path}")
        self.lib.finish()
        self._teeth_source = best

    def _setup_teeth(self, ctx: DubContext) -> None:
        self.teeth_strength = max(0.0, float(ctx.teeth_strength))
        self.teeth_proxy = None
        if self._teeth_source is not None:
            i, frame = self._teeth_source
            self.teeth_frame = i
            self.teeth_proxy = TeethProxy.from_frame(frame, ctx.landmarks[i], frame_index=i)
        self._teeth_source = None

    # -- render ----------------------------------------------------------------------------------------------
    def render(self, frames: Sequence[np.ndarray], out_indices: Sequence[int]) -> list:
        if self.ctx is None:
            raise LipDubError("The classic engine was not prepared.")
        return [self.render_one(f, int(o)) for f, o in zip(frames, out_indices)]

    def warm(self, out_indices, progress=None, cancel=None) -> None:
        """Retrieve and blend the mouth textures of `out_indices` once (half of a frame's render time): they
        depend on the voice and the clip only, not on the frame being composited or on the mask."""
        todo = [int(o) for o in out_indices if int(o) not in self._textures]
        for k, o in enumerate(todo):
            tex = self.texture(o) if self.valid[o] else None
            self._textures[o] = None if tex is None else \
                cv2.imencode(".jpg", tex, [cv2.IMWRITE_JPEG_QUALITY, TEXTURE_JPEG_QUALITY])[1]
            if k % 16 == 0:
                report(progress, "textures", k, len(todo))
                check(cancel)
        report(progress, "textures", len(todo), len(todo))

    def _texture_for(self, o: int, alpha: np.ndarray) -> Optional[np.ndarray]:
        if o in self._textures:
            enc = self._textures[o]
            return None if enc is None else cv2.imdecode(enc, cv2.IMREAD_COLOR)
        return self.texture(o, support(alpha, TEXTURE_MARGIN))

    def mouth_alpha(self, o: int) -> np.ndarray:
        """(h, w) float32 in [0, 1], canonical-crop pixels: where output frame o shows the retrieved texture."""
        cw, ch = self.crop.size
        tpx = self.crop.to_px(self.target_canon[o])
        alpha = np.zeros((ch, cw), np.uint8)
        poly = np.concatenate([tpx[INNER_JAW], tpx[NOSE_BOTTOM]])
        cv2.fillPoly(alpha, [np.round(poly * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
        r = max(1, int(round(0.08 * self.crop.ppi)))
        alpha = cv2.erode(alpha, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        return cv2.GaussianBlur(alpha.astype(np.float32) / 255.0, (0, 0), max(0.5, 0.06 * self.crop.ppi))

    def texture(self, o: int, region: Optional[tuple] = None) -> Optional[np.ndarray]:
        """The blended mouth texture of output frame o in canonical-crop pixels, already in the target shape.
        `region` (x0, y0, x1, y1): compute only these pixels, the rest repeats its edge (the frame uses only the
        texture under `mouth_alpha`, whose bounding box is ~85% of the crop)."""
        rows = self.selection.rows[o]
        wts = self.selection.weights[o]
        use = rows >= 0
        if not use.any():
            return None
        dst = np.concatenate([self.crop.to_px(self.target_canon[o])[warp.WARP_POINTS], self._cborder])
        w, h = self.crop.size
        x0, y0, x1, y1 = region or (0, 0, w, h)
        labels = warp.label_triangles(dst, self._ctris, (h, w))[y0:y1, x0:x1]
        srcs = [np.concatenate([self.crop.to_px(self.lib.canon[r])[warp.WARP_POINTS], self._cborder])
                for r in rows[use]]
        affs = warp.affines_many(srcs, dst, self._ctris)      # the candidates share dst: one solve
        warped = [warp.warp_image(self.lib.image(r), src, dst, self._ctris, out_hw=(y1 - y0, x1 - x0),
                                  labels=labels, origin=(x0, y0), affines=aff)
                  for r, src, aff in zip(rows[use], srcs, affs)]
        tex = retrieval.weighted_median(np.stack(warped), wts[use])
        if (x0, y0, x1, y1) != (0, 0, w, h):
            tex = cv2.copyMakeBorder(tex, y0, h - y1, x0, w - x1, cv2.BORDER_REPLICATE)
        return tex

    def render_one(self, frame: np.ndarray, o: int) -> Optional[RenderedPatch]:
        ctx = self.ctx
        if not (0 <= o < ctx.num_output_frames) or not self.valid[o]:
            return None
        s = int(ctx.source_index[o])
        orig = np.asarray(ctx.landmarks[s], np.float64)
        target = self.targets[o].astype(np.float64)
        mask_lm = mask_landmarks_for(target, orig)
        fh, fw = frame.shape[:2]
        roi = mask_roi((fh, fw), mask_lm, ctx.mask)
        x0, y0, x1, y1 = roi
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        bw, bh = x1 - x0, y1 - y0
        off = np.array([x0, y0], np.float64)

        # 1. jaw correction: the frame's own lower face moved from its landmarks to the targets
        border = self.sims[s].inv(self._fborder) - off
        src_pts = np.concatenate([orig[warp.WARP_POINTS] - off, border])
        dst_pts = np.concatenate([target[warp.WARP_POINTS] - off, border])
        step = max(1, min(bh, bw) // 160)           # HD faces: maps on a coarser grid, upsampled
        mx, my = warp.pwa_maps_coarse(src_pts, dst_pts, self._ftris, (bh, bw), step)
        jaw = cv2.remap(frame, mx + np.float32(x0), my + np.float32(y0), warp.INTERP,
                        borderMode=cv2.BORDER_REPLICATE)

        # 2. retrieved texture in the target shape, mapped from canonical crop into the box
        alpha = self.mouth_alpha(o)
        tex = self._texture_for(o, alpha)
        if tex is None:
            image = jaw
        else:
            a = self.crop.frame_to_crop(self.sims[s]).copy()
            a[:, 2] += a[:, :2] @ off                  # box pixel -> crop pixel
            flags = warp.INTERP | cv2.WARP_INVERSE_MAP
            tex_box = cv2.warpAffine(tex, a, (bw, bh), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            a_box = cv2.warpAffine(alpha, a, (bw, bh), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            np.clip(a_box, 0.0, 1.0, out=a_box)
            # where a_box is 0 the blend gives the jaw's pixels exactly, and colour_match samples only a_box's
            # feather ring: both work on a_box's support alone (bit-identical, ~half of an HD box)
            sx0, sy0, sx1, sy1 = support(a_box, 0) or (0, 0, bw, bh)
            sub = np.s_[sy0:sy1, sx0:sx1]
            tex_sub = color_match(tex_box[sub], jaw[sub], ring_weights(a_box[sub]))
            image = jaw
            image[sub] = kernels.blend(jaw[sub], tex_sub, a_box[sub])
        iod = float(geo.inter_ocular(target))
        opening = float(geo.mouth_opening(target)) / iod if iod > 0 else 0.0
        return RenderedPatch(box=(x0, y0, x1, y1), image=image, mask_landmarks=mask_lm.astype(np.float32),
                             mouth_open=opening)

    def close(self) -> None:
        self.lib = None
        self._textures = {}

"""Moving the playhead and the in/out range from the keyboard and menus (the timeline is the source of both)."""
from __future__ import annotations


class Navigation:
    def __init__(self, win):
        self.win, self.session, self.timeline = win, win.session, win.timeline

    def go_to(self, frame: int) -> None:
        """Frame `frame` (negative: counted from the end)."""
        self.timeline.set_playhead(frame if frame >= 0 else self.timeline.num_frames + frame)

    def step(self, n: int) -> None:
        self.timeline.set_playhead(self.session.playhead + n)

    def step_seconds(self, s: float) -> None:
        self.step(int(round(s * self.session.fps)))

    def jump_low(self, direction: int) -> None:
        self._jump_to_run(self.win.sync_track.low_runs(), direction,
                          "No low-confidence stretch (score the sync first).")

    def jump_flagged(self, direction: int) -> None:
        """The next (previous) stretch of frames the quality check flagged (the QC lane)."""
        self._jump_to_run(self.win.qc_lane.flagged_runs(), direction,
                          "No frame flagged by the quality check (Analyze ▸ Score Dubbed Result runs it).")

    def _jump_to_run(self, rs, direction: int, none_message: str) -> None:
        """Move the playhead to the start of the next (direction > 0) or previous run (a, b) of frames, wrapping."""
        if not rs:
            self.win.messages.info(none_message)
            return
        ph = self.session.playhead
        if direction > 0:
            nxt = [a for a, b in rs if a > ph]
            target = nxt[0] if nxt else rs[0][0]
        else:
            prv = [a for a, b in rs if a < ph and not (a <= ph < b)] or [a for a, b in rs if a < ph]
            target = prv[-1] if prv else rs[-1][0]
        self.timeline.set_playhead(target)
        kinds = self.win.qc_lane.kinds_at(target)
        if kinds:
            self.win.messages.info(f"Frame {target}: flagged for {', '.join(kinds)}")

    def set_in(self) -> None:
        s = self.session
        if s.info is None:
            return
        a, rng = s.playhead, s.project.range
        self.timeline.set_range((a, rng[1] if rng and rng[1] > a else s.num_frames))

    def set_out(self) -> None:
        s = self.session
        if s.info is None:
            return
        b, rng = s.playhead + 1, s.project.range
        self.timeline.set_range((rng[0] if rng and rng[0] < b else 0, b))

    def clear_range(self) -> None:
        self.timeline.set_range(None)

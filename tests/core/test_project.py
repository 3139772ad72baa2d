"""core.project: versioned JSON, relative media paths, validation, atomic save, autosave + recovery."""
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from core.errors import ProjectError
from core.project import (SCHEMA_VERSION, Project, autosave_path, find_recoverable, recover)
from data_paths import SAMPLES


@pytest.fixture
def media(tmp_path):
    d = tmp_path / "media"
    d.mkdir()
    v = d / "clip.mp4"
    a = d / "voice.wav"
    b = d / "voice2.wav"
    shutil.copy(SAMPLES / "grid_s1_sample.mp4", v)
    shutil.copy(SAMPLES / "voice_sample.wav", a)
    shutil.copy(SAMPLES / "voice_sample.wav", b)
    return v, a, b


def make_project(media):
    v, a, b = media
    p = Project(video=str(v))
    p.add_voice(str(a), "Take 1")
    p.add_voice(str(b))
    p.active_voice = 1
    p.face_track = 2
    p.engine = "wav2lip"
    p.mask.feather = 0.3
    p.mask.color_match = False
    p.range = (10, 40)
    p.export.crf = 23
    p.export.preset = "fast"
    p.export.output = str(v.parent / "out.mp4")
    p.playhead = 17
    p.history.add_override(20, 30, "keep_original")
    p.history.set_voice_offset(2)
    p.history.set_mask_keyframe(12, p.mask)
    p.history.undo()
    return p


def test_round_trip_keeps_everything(tmp_path, media):
    p = make_project(media)
    path = tmp_path / "proj.lipdub"
    p.save(str(path))
    q = Project.load(str(path))
    assert q == p
    assert q.history.to_json() == p.history.to_json()
    assert q.edits.overrides[0].kind == "keep_original" and q.edits.voice_offset == 2
    assert q.edits.mask_keyframes == []
    assert q.history.can_redo and q.history.redo_label == "Mask keyframe at 12"   # history survives
    q.history.redo()
    assert [k.frame for k in q.edits.mask_keyframes] == [12]
    assert q.path == str(path.resolve())
    assert q.voice.path == str(media[2].resolve())
    assert q.voices[0].display_name() == "Take 1" and q.voices[1].display_name() == "voice2.wav"


def test_media_paths_are_relative_and_follow_a_moved_folder(tmp_path, media):
    p = make_project(media)
    path = tmp_path / "proj.lipdub"
    p.save(str(path))
    doc = json.loads(path.read_text())
    assert doc["format"] == "lipdub-project" and doc["version"] == SCHEMA_VERSION
    assert doc["video"] == "media/clip.mp4"
    assert doc["voices"][0]["path"] == "media/voice.wav"
    # move project + media together: paths still resolve
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    shutil.move(str(tmp_path), str(moved))
    try:
        q = Project.load(str(moved / "proj.lipdub"))
        assert Path(q.video) == (moved / "media" / "clip.mp4").resolve()
        assert q.missing_media() == []
    finally:
        shutil.move(str(moved), str(tmp_path))


def test_missing_media_listed_not_fatal(tmp_path, media):
    p = make_project(media)
    path = tmp_path / "proj.lipdub"
    p.save(str(path))
    os.remove(media[1])
    q = Project.load(str(path))
    assert q.missing_media() == [str(media[1].resolve())]


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not valid JSON"),
    ('{"format": "something-else", "version": 1}', "not a LipDub Studio project"),
    ('{"format": "lipdub-project", "version": 99}', "newer LipDub Studio"),
    ('{"format": "lipdub-project", "version": "x"}', "invalid schema version"),
    ('{"format": "lipdub-project", "version": 1, "engine": "magic"}', "unknown engine"),
    ('{"format": "lipdub-project", "version": 1, "voices": [{"path": "a.wav"}], "active_voice": 3}',
     "active_voice"),
    ('{"format": "lipdub-project", "version": 1, "range": [50, 10]}', "'range'"),
    ('{"format": "lipdub-project", "version": 1, "mask": {"feather": "wide"}}', "mask.feather"),
    ('{"format": "lipdub-project", "version": 1, "export": {"crf": 99}}', "export.crf"),
    ('[1, 2, 3]', "not a LipDub Studio project"),
    ('{"format": "lipdub-project", "version": 2, "engine_options": {"classic": {"k": "many"}}}',
     "engine_options.classic.k"),
    ('{"format": "lipdub-project", "version": 2, "engine_options": []}', "'engine_options'"),
    ('{"format": "lipdub-project", "version": 1, "edits": {"edits": {"overrides": [{"start": 5, "end": 2}]}}}',
     "must not be empty"),
])
def test_bad_files_raise_project_error_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "bad.lipdub"
    path.write_text(content)
    with pytest.raises(ProjectError) as ei:
        Project.load(str(path))
    assert fragment in str(ei.value)
    assert "bad.lipdub" in str(ei.value)


def test_version_1_files_still_load(tmp_path, media):
    """Before engine plug-ins the Wav2Lip generator was a top-level "checkpoint" and the CPU the default."""
    v, a, _ = media
    path = tmp_path / "old.lipdub"
    path.write_text(json.dumps({"format": "lipdub-project", "version": 1, "video": str(v),
                                "voices": [{"path": str(a), "name": ""}], "engine": "wav2lip",
                                "checkpoint": "weights/wav2lip_gan.pth"}))
    p = Project.load(str(path))
    assert p.engine == "wav2lip" and p.device == "cpu"
    assert p.engine_options["wav2lip"].checkpoint == str((tmp_path / "weights" / "wav2lip_gan.pth").resolve())
    assert p.to_dub_settings().engine_options["wav2lip"].checkpoint == p.engine_options["wav2lip"].checkpoint
    p.save()
    doc = json.loads(path.read_text())
    assert doc["version"] == SCHEMA_VERSION and "checkpoint" not in doc
    assert doc["engine_options"]["wav2lip"] == {"checkpoint": "weights/wav2lip_gan.pth"}   # relative again
    assert Project.load(str(path)).engine_options == p.engine_options
    assert Project().device == "auto"          # new projects compute on the GPU when there is one


def test_version_2_projects_load_and_newer_ones_are_refused(tmp_path):
    """Version 3 added the performer video and "Driven by voice" ranges: a version-2 file loads as it was; a file
    from a newer build is refused with a clear line (that is what a version-2 build now says of a version-3 file)."""
    v, a = tmp_path / "v.mp4", tmp_path / "a.wav"
    v.write_bytes(b"x"), a.write_bytes(b"x")
    path = tmp_path / "v2.lipdub"
    path.write_text(json.dumps({"format": "lipdub-project", "version": 2, "video": str(v),
                                "voices": [{"path": str(a), "name": "take"}], "engine": "classic"}))
    p = Project.load(str(path))
    assert p.voices[0].name == "take" and not p.voices[0].performer and p.engine == "classic"
    p.save()
    assert json.loads(path.read_text())["version"] == SCHEMA_VERSION == 3
    path.write_text(json.dumps({"format": "lipdub-project", "version": SCHEMA_VERSION + 1, "video": str(v)}))
    with pytest.raises(ProjectError, match=f"newer LipDub Studio .project version {SCHEMA_VERSION + 1}"):
        Project.load(str(path))


def test_missing_file_raises_project_error(tmp_path):
    with pytest.raises(ProjectError, match="does not exist"):
        Project.load(str(tmp_path / "nope.lipdub"))


def test_save_is_atomic_on_failure(tmp_path, media, monkeypatch):
    p = make_project(media)
    path = tmp_path / "proj.lipdub"
    p.save(str(path))
    before = path.read_text()
    p.engine = "classic"

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(json, "dump", boom)
    with pytest.raises(ProjectError, match="No space left"):
        p.save()
    assert path.read_text() == before          # the old file is intact
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []   # no temp left behind


def test_save_into_missing_folder_is_project_error(tmp_path, media):
    with pytest.raises(ProjectError, match="does not exist"):
        make_project(media).save(str(tmp_path / "nope" / "p.lipdub"))


def test_autosave_and_recovery_of_a_saved_project(tmp_path, media):
    p = make_project(media)
    path = tmp_path / "proj.lipdub"
    p.save(str(path))
    time.sleep(0.02)
    p.playhead = 99
    p.engine = "classic"
    a = p.write_autosave(str(tmp_path / "autosave"))
    assert a == autosave_path(str(path.resolve()))
    found = find_recoverable(str(tmp_path / "autosave"), [str(path)])
    assert [r.autosave for r in found] == [a]
    q = recover(a)
    assert q.path == str(path.resolve())
    assert q.playhead == 99 and q.engine == "classic" and q.video == p.video
    # saving the project removes the autosave; nothing left to recover
    q.save()
    assert not Path(a).exists()
    assert find_recoverable(str(tmp_path / "autosave"), [str(path)]) == []


def test_untitled_autosaves_live_in_the_app_data_folder_and_earlier_ones_are_still_found(tmp_path, media,
                                                                                         monkeypatch):
    """The autosave folder is the application's data folder (core.paths, like the models folder); a crash copy
    an earlier version left in its old folder is still offered for recovery."""
    from core import project as project_mod

    monkeypatch.delenv("LIPDUB_AUTOSAVE_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Path(project_mod.default_autosave_dir()) == tmp_path / "data" / "LipDubStudio" / "autosave"
    p = make_project(media)
    old = project_mod.earlier_autosave_dir()
    assert old == tmp_path / "data" / "lipdub" / "autosave"
    a = Path(p.write_autosave(str(old)))
    a.rename(old / "untitled-999999999.lipdub.autosave")
    found = find_recoverable()
    assert [Path(r.autosave).parent for r in found] == [old]
    assert find_recoverable(str(tmp_path / "elsewhere")) == []     # an explicit folder is the only one searched


def test_autosave_of_an_untitled_project_from_a_dead_session(tmp_path, media):
    p = make_project(media)
    d = tmp_path / "autosave"
    a = Path(p.write_autosave(str(d)))
    assert a.parent == d
    # our own live autosave is not offered; pretend it came from another (crashed) process
    assert find_recoverable(str(d)) == []
    crashed = d / "untitled-999999999.lipdub.autosave"
    a.rename(crashed)
    found = find_recoverable(str(d))
    assert len(found) == 1 and found[0].project is None
    q = recover(found[0].autosave)
    assert q.path is None and q.video == p.video and q.range == (10, 40)


def test_older_autosave_than_project_is_ignored(tmp_path, media):
    p = make_project(media)
    path = tmp_path / "proj.lipdub"
    p.path = str(path)
    a = p.write_autosave(str(tmp_path))
    old = time.time() - 100
    os.utime(a, (old, old))
    Project(video=p.video).save(str(path))   # saved later elsewhere (e.g. another window) -> stale autosave
    Path(a).touch()
    os.utime(a, (old, old))
    assert find_recoverable(str(tmp_path / "none"), [str(path)]) == []


def test_to_dub_settings(media):
    p = make_project(media)
    s = p.to_dub_settings(output="x.mp4", frame_range=(5, 9))
    assert s.video == p.video and s.audio == str(media[2].resolve())
    assert s.engine == "wav2lip" and s.face_track == 2 and s.frame_range == (5, 9)
    assert s.mask.feather == 0.3 and s.mask.color_match is False
    assert s.crf == 23 and s.preset == "fast"
    assert s.edits.overrides[0].start == 20 and s.edits is not p.edits
    s.mask.feather = 1.0
    assert p.mask.feather == 0.3       # a copy, not shared
    with pytest.raises(ProjectError, match="no voice"):
        Project(video=p.video).to_dub_settings()


def test_voice_list_management(media):
    v, a, b = media
    p = Project(video=str(v))
    assert p.voice is None
    assert p.add_voice(str(a)) == 0 and p.active_voice == 0
    assert p.add_voice(str(b), activate=False) == 1 and p.active_voice == 0
    assert p.add_voice(str(a)) == 0          # same file twice: one entry
    assert len(p.voices) == 2
    p.active_voice = 1
    p.remove_voice(0)
    assert p.active_voice == 0 and p.voice.path == str(b.resolve())
    p.remove_voice(0)
    assert p.voice is None and p.active_voice == -1


def test_a_performer_voice_track_drives_the_dub_and_is_saved(tmp_path, media):
    """A voice track marked as the performer's video: the project's dub follows it (DubSettings.driver)."""
    p = make_project(media)
    assert p.to_dub_settings(output=str(tmp_path / "o.mp4")).driver is None
    p.voice.performer = True
    assert p.to_dub_settings(output=str(tmp_path / "o.mp4")).driver == p.voice.path
    path = tmp_path / "perf.lipdub"
    p.save(path)
    doc = json.loads(path.read_text())
    assert doc["voices"][p.active_voice]["performer"] is True
    q = Project.load(path)
    assert q.voice.performer and q.to_dub_settings(output=str(tmp_path / "o.mp4")).driver == q.voice.path
    doc["voices"][0]["performer"] = "yes"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="performer"):
        Project.load(path)

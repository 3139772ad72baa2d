"""ffmpeg/ffprobe helpers for the app tests."""
import json
import shutil
import subprocess


def ffprobe_json(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json",
                        str(path)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def ffmpeg(*args):
    subprocess.run([shutil.which("ffmpeg"), "-v", "error", "-y", *map(str, args)], check=True)

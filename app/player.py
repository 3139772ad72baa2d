"""A small player for rendered previews (the dubbed in/out range with its voice), via QtMultimedia."""
from __future__ import annotations

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer
from PySide6.QtMultimediaWidgets import QVideoWidget
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout

from .media_stop import stop_player


class PlayerDialog(QDialog):
    mediaReady = Signal(int)          # duration in ms, once the file is loaded

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Dubbed preview")
        self.resize(720, 560)
        self.player = QMediaPlayer(self)
        self.audio = None          # without an audio output device the picture plays alone
        if not QMediaDevices.defaultAudioOutput().isNull():
            self.audio = QAudioOutput(self)
            self.player.setAudioOutput(self.audio)
        self.video = QVideoWidget(self)
        self.player.setVideoOutput(self.video)
        self.play_button = QPushButton("Pause")
        self.play_button.clicked.connect(self.toggle)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.sliderMoved.connect(self.player.setPosition)
        self.time_label = QLabel("")
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.video, 1)
        row = QHBoxLayout()
        row.addWidget(self.play_button)
        row.addWidget(self.slider, 1)
        row.addWidget(self.time_label)
        lay.addLayout(row)
        lay.addWidget(self.info_label)
        self.player.durationChanged.connect(self._duration)
        self.player.positionChanged.connect(self._position)
        self.player.playbackStateChanged.connect(self._state)
        self.player.errorOccurred.connect(lambda err, msg: self.info_label.setText(f"Cannot play: {msg}"))
        self.path = None

    def load(self, path: str, info: str = "") -> None:
        self.path = path
        self.info_label.setText(info)
        self.player.setSource(QUrl.fromLocalFile(path))
        self.player.play()

    def toggle(self) -> None:
        if self.player.playbackState() == QMediaPlayer.PlayingState:
            self.player.pause()
        else:
            if self.player.position() >= self.player.duration() > 0:
                self.player.setPosition(0)
            self.player.play()

    def _duration(self, ms: int) -> None:
        self.slider.setRange(0, ms)
        if ms > 0:
            self.mediaReady.emit(ms)

    def _position(self, ms: int) -> None:
        self.slider.setValue(ms)
        self.time_label.setText(f"{ms / 1000:.2f} / {self.player.duration() / 1000:.2f} s")

    def _state(self, state) -> None:
        self.play_button.setText("Pause" if state == QMediaPlayer.PlayingState else "Play")

    def done(self, r) -> None:
        stop_player(self.player, self.audio)
        self.player.setSource(QUrl())
        super().done(r)

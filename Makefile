# The two set-up commands of the README: `make demo` (the main job on the bundled sample) and `make test`.
PY := .venv/bin/python
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/lipdub/numba

.PHONY: install demo test

install:
	bash tools/install.sh

demo: install
	mkdir -p out
	$(PY) main.py dub --video resources/samples/grid_s1_sample.mp4 --audio resources/samples/voice_sample.wav \
		-o out/demo_dub.mp4 --report out/demo_sync.csv

test: install
	# core tests on both cores (one test file per worker); the window's tests alone afterwards: live playback once
	# deadlocked in Qt Multimedia's teardown while another worker loaded the machine (see docs/MEASUREMENTS.md)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile tests --ignore=tests/app
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider tests/app

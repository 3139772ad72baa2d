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
	# the suite on both cores, one test file per worker, the heaviest files first (tests/conftest.py: HEAVY_FIRST)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder tests

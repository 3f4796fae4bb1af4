# Two commands for a fresh machine (see README):
#   make demo   install into .venv, download the weights, track the sample video
#   make test   install into .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) main.py track tests/data/posetrack18_mini/videos/000001_mpiinew_test/000001_mpiinew_test.mp4 \
		--out demo_out --formats json,csv,video
	@echo "Results in demo_out/ (annotated video: demo_out/000001_mpiinew_test.mp4)"

test: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: install
	$(PY) benchmarks/pose_throughput.py
	$(PY) benchmarks/tracker.py
	$(PY) benchmarks/tracker_quality.py
	$(PY) benchmarks/pipeline.py
	$(PY) benchmarks/posetrack_eval.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache

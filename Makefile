# Two commands for a fresh machine (see README):
#   make demo   install into .venv, download the weights, track the sample video
#   make test   install into .venv and run the test suite
# Both install the tested versions from constraints.txt (`make lock` regenerates it).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test test-fast bench lock clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) main.py track tests/data/posetrack18_mini/videos/000001_mpiinew_test/000001_mpiinew_test.mp4 \
		--out demo_out --formats json,csv,video
	@echo "Results in demo_out/ (annotated video: demo_out/000001_mpiinew_test.mp4)"

test: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/pose_throughput.py
	$(PY) benchmarks/tracker.py
	$(PY) benchmarks/tracker_quality.py
	$(PY) benchmarks/tracker_reid.py
	$(PY) benchmarks/pipeline.py
	$(PY) benchmarks/posetrack_eval.py
	$(PY) benchmarks/scale_out.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/onnx_backends.py

lock: install
	# --all keeps setuptools (a test dependency: tests/test_packaging.py builds the wheel with it); pip itself is not pinned.
	$(PY) -m pip freeze --all --exclude-editable | grep -v -i -E '^(hrtrack|pip)==' > constraints.body
	{ sed -n '/^#/p' constraints.txt; cat constraints.body; } > constraints.new && mv constraints.new constraints.txt && rm constraints.body

clean:
	rm -rf $(VENV) demo_out .pytest_cache

# Commands for a fresh machine (see README):
#   make demo   install into .venv, download the weights, track the sample video
#   make try    install into .venv, track the sample video offline with the tiny test network
#   make test   install into .venv and run the test suite
# All install the tested versions from constraints.txt (`make lock` regenerates it).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
DEMO_VIDEO := tests/data/posetrack18_mini/videos/000001_mpiinew_test/000001_mpiinew_test.mp4
# The README's "try it offline" command (tests/test_readme_offline.py keeps the two the same).
TRY_ARGS := track $(DEMO_VIDEO) --out try_out --formats json,csv,video \
	--det-file tests/data/demo/000001_mpiinew_test_detections.json --det-image-key index \
	--pose-config tests/data/hrnet_reference/dev_tiny.yaml \
	--pose-weights tests/data/hrnet_reference/dev_tiny_state_dict.pt --device cpu --offline --backend torch

.PHONY: install demo try test test-fast bench lock clean

# pip's own output goes to a log; its tail is shown when the install fails.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	@echo "installing hrtrack and its tested dependencies into $(VENV) (pip's log: $(VENV)/pip.log)"
	@{ $(PY) -m pip install --upgrade pip && $(PY) -m pip install -c constraints.txt -e '.[test]'; } \
		> $(VENV)/pip.log 2>&1 || { tail -n 25 $(VENV)/pip.log; echo "pip failed; its whole log: $(VENV)/pip.log"; exit 1; }
	touch $@

install: $(VENV)/.installed

# track checks every weights file first and lists all that are missing in one message.
demo: install
	@$(PY) main.py track $(DEMO_VIDEO) --out demo_out --formats json,csv,video || { \
		echo; echo "make demo did not run (see above). Without internet, try the whole pipeline offline with"; \
		echo "the tiny test network and boxes from a file: make try, which runs"; \
		echo "  $(PY) main.py $(TRY_ARGS)"; exit 1; }
	@echo "Results in demo_out/ (annotated video: demo_out/000001_mpiinew_test.mp4)"

try: install
	$(PY) main.py $(TRY_ARGS)

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
	$(PY) benchmarks/posetrack21_eval.py
	$(PY) benchmarks/scale_out.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/onnx_backends.py

lock: install
	# --all keeps setuptools (a test dependency: tests/test_packaging.py builds the wheel with it); pip itself is not pinned.
	$(PY) -m pip freeze --all --exclude-editable | grep -v -i -E '^(hrtrack|pip)==' > constraints.body
	{ sed -n '/^#/p' constraints.txt; cat constraints.body; } > constraints.new && mv constraints.new constraints.txt && rm constraints.body

clean:
	rm -rf $(VENV) demo_out try_out .pytest_cache

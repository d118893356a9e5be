# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   install, set up the ZenML stack, run the training pipeline on the demo corpus
#   make test   install, run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

# The embedded default stack lives in the project: ZenML's SQLite store, the
# local artifact store and MLflow's tracking database all under .zenml-home/.
export ZENML_CONFIG_PATH ?= $(CURDIR)/.zenml-home
export ZENML_ANALYTICS_OPT_IN := false
export ZENML_ENABLE_RICH_TRACEBACK := false
export AUTO_OPEN_DASHBOARD := false
export KERAS_BACKEND := tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 2
# a crash in native code (TensorFlow, numba, libsndfile) prints every thread's Python stack
export PYTHONFAULTHANDLER ?= 1

.PHONY: install setup demo test ui serve dashboard dashboard-stop clean clean-stores

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# librosa's numba kernels compiled once, here, into numba's cache (librosa's __pycache__, or the shell's
	# NUMBA_CACHE_DIR; about 15 s on 2 cores), not by the first pipeline run, prediction or service request
	# (speech_emotion/numba_cache.py)
	$(BIN)/python -c 'from speech_emotion import numba_cache; numba_cache.librosa()'
	touch $@

setup: install
	$(BIN)/ser setup

demo: setup
	$(BIN)/zenml pipeline run pipelines.training.training_pipeline -c configs/demo.yaml

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

ui: setup
	$(BIN)/ser mlflow-ui

# the production model (MLflow alias "champion") over HTTP on 127.0.0.1:5001 (see the README)
serve: setup
	PATH=$(CURDIR)/$(BIN):$$PATH MLFLOW_TRACKING_URI=$$($(BIN)/ser mlflow-ui --print-uri) \
	  $(BIN)/mlflow models serve -m models:/speech_emotion@champion --env-manager local -h 127.0.0.1 -p 5001

# ZenML's dashboard on the same store (port 8237; `make ui` keeps 5000), client config untouched
dashboard: setup
	$(BIN)/ser dashboard start

dashboard-stop: install
	$(BIN)/ser dashboard stop

# caches only (features, content hashes, temporary folders); the stores with every model and run stay
clean:
	rm -rf data/cache .pytest_cache build
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# the stores (.zenml-home: ZenML, artifacts, MLflow): prints what they hold, then asks; CONFIRM=1 does not ask
clean-stores: install
	$(BIN)/ser clean --stores $(if $(filter 1 yes true,$(CONFIRM)),--yes)

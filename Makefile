# Two commands on a fresh machine: `make demo` (install + main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	# The CPU torch build first, pinned: otherwise pip takes the newest (CUDA) torch.
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[export,bench,notebooks,dev]"
	# optimum-intel pulls a torchvision built against CUDA torch, which breaks `import transformers`
	# ("operator torchvision::nms does not exist"); nothing here needs it.
	$(BIN)/pip uninstall -q -y torchvision
	$(BIN)/python -m ipykernel install --user --name ov_spec --display-name "ov_spec (.venv)" >/dev/null
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python -m ov_spec.demo

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check ov_spec tests scripts
	$(BIN)/ruff format --check ov_spec tests scripts

clean:
	rm -rf $(VENV)

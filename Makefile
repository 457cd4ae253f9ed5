# Two commands do all the set-up (README): `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO := data/demo
PORT ?= 8501

.PHONY: run test venv demo bench clean

# pip shows what it downloads and installs (a first install takes several minutes).
$(BIN)/.installed: requirements.txt requirements-dev.txt
	@echo "== Installing Python packages into $(VENV) (several minutes the first time)"
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --progress-bar on --upgrade pip
	$(BIN)/pip install --progress-bar on -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

$(DEMO)/cases.csv: | venv
	@echo "== Generating the demo hospital in $(DEMO)"
	$(BIN)/python -m engine -v generate --out $(DEMO)

# The demo's forecasting model is trained once (about a minute); the dashboard never trains on load.
# -v prints each training step (backtest, drift, final fit, registration) as it starts.
# It is trained again when the model file format (engine/forecast/persist.py) is newer than the saved model.
var/models/demo/current.json: $(DEMO)/cases.csv engine/forecast/persist.py
	@echo "== Training the demo hospital's forecasting model (a few minutes; steps below)"
	$(BIN)/python -m engine -v train --data $(DEMO)

demo: $(DEMO)/cases.csv var/models/demo/current.json

# The audit chain's HMAC key lives outside the database (README "Audit key"): created once, owner-only.
var/audit.key:
	@mkdir -p var && umask 077 && $(PY) -c "import secrets; print(secrets.token_hex(32))" > $@
	@echo "== Created the audit key $@ (keep it outside the database; back it up)"

run: venv demo var/audit.key
	@echo "== Serving the dashboard on http://localhost:$(PORT)"
	HOSPITAL_DIR=$(DEMO) OR_AUDIT_KEY_FILE=$${OR_AUDIT_KEY_FILE:-var/audit.key} $(BIN)/streamlit run dashboard/app.py --server.port $(PORT)

# Two workers (CI has 2 cores). tests/conftest.py makes the work units (the browser tests share one worker,
# a file with module-scoped fixtures stays on one, other tests go one by one) and runs the costliest first.
TEST_WORKERS ?= 2
test: venv
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -q

bench: venv
	for f in bench/bench_*.py; do $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) var $(DEMO)

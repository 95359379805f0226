# Two commands from a fresh clone: `make demo` (the main job) and `make test` (the suite CI runs).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore
WORK ?= work

.PHONY: setup demo test test-slow test-flink lint format clean

setup:
	@./scripts/setup.sh

demo: setup
	$(VENV)/bin/pin2vec data movielens-100k --out $(WORK)/data/ml-100k
	$(VENV)/bin/pin2vec run --events $(WORK)/data/ml-100k/ratings.tsv \
	  --user-col user_id --item-col item_id --time-col timestamp \
	  --titles $(WORK)/data/ml-100k/titles.tsv --output-dir $(WORK)/runs/ml-100k
	$(VENV)/bin/pin2vec related --output-dir $(WORK)/runs/ml-100k \
	  --titles $(WORK)/data/ml-100k/titles.tsv --k 10 50 181 1 100

# `make demo` with every Beam step on Beam's portable path (the Fn API that Flink, Spark and Dataflow use): Beam's
# job service and an external SDK worker pool on loopback, started before the run and stopped after it.
.PHONY: demo-portable
demo-portable: setup
	$(VENV)/bin/pin2vec data movielens-100k --out $(WORK)/data/ml-100k
	$(PY) -m pipeline.portable_beam run --log-dir $(WORK)/runs/ml-100k-portable/beam-services -- \
	  $(VENV)/bin/pin2vec run --events $(WORK)/data/ml-100k/ratings.tsv \
	  --user-col user_id --item-col item_id --time-col timestamp \
	  --titles $(WORK)/data/ml-100k/titles.tsv --output-dir $(WORK)/runs/ml-100k-portable

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q --durations=25  # the slowest tests, to keep the default run well under 20 min

test-slow: setup
	$(PY) -m pytest -q -m slow

# The pipeline with ML Metadata on MySQL, as on a Kubeflow cluster: a MariaDB server on loopback (Debian's
# packages fetched with apt-get download into ~/.cache/pin2vec/mariadb, nothing installed), runs on tiny data.
.PHONY: test-mysql
test-mysql: setup
	$(PY) -m pytest -q -m mysql tests/e2e/test_mysql_metadata.py

# Every task of a compiled Kubeflow spec run with its pod's own command (kubeflow_v2_run_executor), in DAG order.
.PHONY: test-kubeflow
test-kubeflow: setup
	$(PY) -m pytest -q -m kubeflow tests/e2e/test_kubeflow_entrypoint.py

# The real pipeline on a Flink session cluster (a JobManager and 2 TaskManagers, each a JVM) through Beam's
# FlinkRunner, compared with the DirectRunner: fetches Flink and Beam's Flink job server with mvn (cached in
# ~/.cache/pin2vec/flink), then runs in a network namespace with only loopback (pipeline/flink_cluster.py).
.PHONY: test-flink
test-flink: setup
	$(PY) -m pipeline.flink_cluster fetch
	$(PY) -m pipeline.flink_cluster isolated -- $(PY) -m pytest -q -m flink tests/e2e/test_flink_runner.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(WORK)

# gensim Word2Vec beside this project's sources on MovieLens-100K, same split; writes docs/BENCHMARKS.md.
# This project's rows come from the newest RelatedEvaluator evaluation.json of `make demo`'s run.
.PHONY: bench-reference
bench-reference: setup
	$(PY) -m bench.reference_gensim --ratings $(WORK)/data/ml-100k/ratings.tsv \
	  --run-dir $(WORK)/runs/ml-100k --write
	$(PY) -m bench.reference_item_item --ratings $(WORK)/data/ml-100k/ratings.tsv --write

# `pin2vec serve` on the demo run's pushed models: TF Serving's REST (8501) and gRPC (8500) APIs on 127.0.0.1.
.PHONY: serve
serve: setup
	$(VENV)/bin/pin2vec serve --model-base $(WORK)/runs/ml-100k/serving

# The related-items endpoint on 1M x 128-d synthetic items vs numpy and faiss; writes docs/BENCHMARKS.md.
.PHONY: bench-serving
bench-serving: setup build/grpc_load
	$(PY) -m bench.bench_serving --work $(WORK)/bench/serving --grpc-load build/grpc_load --write-docs

build/grpc_load: bench/grpc_load/grpc_load.cc  # the C++ gRPC load generator (installs libgrpc++-dev if missing)
	@bench/grpc_load/build.sh

.PHONY: bench-quick
bench-quick: setup  # this project's trainer vs gensim Word2Vec on one synthetic log (~6 min on 2 cores)
	$(PY) -m bench.bench_quick --work-dir $(WORK)/bench/quick --json-out $(WORK)/bench/quick/result.json

# The ScaNN index (index_lib, pipeline settings) at 1M and 10M x 128-d vs faiss IVF-Flat and numpy brute force,
# each in its own process over a memory-mapped vector file; writes docs/BENCHMARKS.md (~1 h on 2 cores).
.PHONY: bench-index-scale
bench-index-scale: setup
	$(PY) -m bench.bench_index_scale --items 1000000 10000000 --work $(WORK)/bench/index_scale --write-docs

# Cost curves: the whole pipeline on synthetic logs of growing size, time and peak memory (process tree) per
# stage; writes docs/BENCHMARKS.md. About 40 min on 2 cores.
.PHONY: bench-scale
bench-scale: setup  # cost curves: 3 cases x 3 runs (~100 min on 2 cores); add --keep --case 20M:1M:1 to keep a 20M row
	$(PY) -m bench.bench_scale --case 1M:100K --case 1M:1M --case 5M:1M --repeat 3 --work $(WORK)/bench/scale --write-docs

# The parameter-server Trainer on a 1M-item table (a chief, 1 worker, 2 ps tasks on loopback) against the
# single-process path on the same pairs, then the capacity model for 1B events x 100M items from this and
# bench-scale's results (run bench-scale with a 20M case first); writes docs/BENCHMARKS.md and docs/DISTRIBUTED.md.
.PHONY: bench-parameter-servers capacity-model
bench-parameter-servers: setup  # ~10 min on 2 cores
	$(PY) -m bench.bench_parameter_servers --items 1000000 --pairs 1000000 --epochs 2 --repeat 2 \
	  --work $(WORK)/bench/parameter_servers --write-docs
capacity-model: setup  # seconds
	$(PY) -m bench.capacity_model --scale $(WORK)/bench/scale/results.json \
	  --ps $(WORK)/bench/parameter_servers/results.json --write-docs

.PHONY: bench-related-evaluator
bench-related-evaluator: setup  # RelatedEvaluator's lib work at 100k and 1M synthetic items (~15 min on 2 cores)
	rm -f $(WORK)/bench/related_evaluator.md && mkdir -p $(WORK)/bench
	$(PY) -m bench.bench_related_evaluator --items 100000 --pairs 2000000 --append-to $(WORK)/bench/related_evaluator.md
	$(PY) -m bench.bench_related_evaluator --items 1000000 --pairs 20000000 --append-to $(WORK)/bench/related_evaluator.md --write

# The Pin2Vec post's board experiment on planted data (sessions + segmented, coarse, drifting boards): one
# default `pin2vec run` with --collections, scored on held-out engagements and on the planted truth; writes
# docs/BENCHMARKS.md (~5 min on 2 cores).
.PHONY: bench-boards
bench-boards: setup
	test -f $(WORK)/data/boards/synthetic_boards.json || $(VENV)/bin/pin2vec data synthetic --boards \
	  --items 5000 --events 300000 --out $(WORK)/data/boards
	$(VENV)/bin/pin2vec run --events $(WORK)/data/boards/events --collections $(WORK)/data/boards/collections \
	  --collection-col board_id --collection-time-col timestamp --output-dir $(WORK)/runs/boards
	$(PY) -m bench.planted_boards --world $(WORK)/data/boards --run-dir $(WORK)/runs/boards --write

# Text as sessions (words are items, one verse a session: the next item complements, not substitutes): the
# King James Version from Debian's bible-kjv-text (31,102 verses, 789,684 words), one default `pin2vec run`
# (~12 min on 2 cores, 8 of them RelatedEvaluator). The text and its reader come from Debian's packages
# bible-kjv-text and bible-kjv, downloaded and unpacked under $(WORK)/kjv-deb (no root needed); where
# apt-get is missing, install them and run `pin2vec data kjv --out $(WORK)/data/kjv` instead.
KJV_DEB = $(WORK)/kjv-deb
.PHONY: bench-text
bench-text: setup
	test -f $(KJV_DEB)/usr/lib/bible.data || (mkdir -p $(KJV_DEB) && cd $(KJV_DEB) && \
	  apt-get download bible-kjv-text bible-kjv && for deb in *.deb; do dpkg-deb -x $$deb .; done)
	PATH=$(abspath $(KJV_DEB))/usr/bin:$$PATH $(VENV)/bin/pin2vec data kjv \
	  --source $(KJV_DEB)/usr/lib/bible.data --out $(WORK)/data/kjv
	$(VENV)/bin/pin2vec run --sessions $(WORK)/data/kjv/sessions.txt --output-dir $(WORK)/runs/kjv

.PHONY: bench-faults
bench-faults: setup  # kill -9 in every step, damaged versions under REST+gRPC load, concurrent runs (~25 min on 2 cores)
	$(PY) -m bench.bench_faults --work $(WORK)/bench/faults --write

.PHONY: bench-daily
bench-daily: setup  # the daily loop, warm against cold, on a daily synthetic log (~40 min on 2 cores)
	$(PY) -m bench.bench_daily --work $(WORK)/bench/daily --days 10 --first 8 --window 7 --write

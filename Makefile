# rtcdn: `make run` installs and starts the server, `make test` installs what the tests need and runs them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WEBSDK := web/node_modules/@flashphoner/websdk/package.json
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS ?=

.PHONY: run install test check lint chromium ffmpeg nginx-rtmp prometheus redis janus bench clean

# the C compiler builds the one native module (rtcdn.webrtc._fastsend, setup.py); without one the
# install still works and players' RTP is sent from Python
$(BIN)/rtcdn: pyproject.toml setup.py src/rtcdn/webrtc/_fastsend.c
	@command -v cc >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends gcc libc6-dev || true; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/rtcdn
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(WEBSDK): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund
	touch $@

install: $(BIN)/rtcdn $(WEBSDK)

run: install
	$(BIN)/rtcdn serve $(ARGS)

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# Debian's ffmpeg (5.1) and rtmpdump (librtmp): the RTMP peers of tests/rtmp and tests/e2e/test_rtmp_*.py, and bench/rtmp.py
ffmpeg:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null && command -v rtmpdump >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends ffmpeg rtmpdump; }

# Debian's nginx with libnginx-mod-rtmp: the third-party RTMP server of tests/e2e/test_rtmp_nginx.py, which runs
# its own nginx on a loopback address; the package's service is disabled and stopped (nothing on port 80)
nginx-rtmp:
	@[ -x /usr/sbin/nginx ] && [ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nginx libnginx-mod-rtmp && { $(SUDO) systemctl disable --now nginx >/dev/null 2>&1 || true; }; }
	@[ ! -s /run/nginx.pid ] || { $(SUDO) /usr/sbin/nginx -s quit 2>/dev/null; sleep 1; } || true

# Debian's Prometheus server, which tests/e2e/test_prometheus.py starts on a loopback address
prometheus:
	@command -v prometheus >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; $(SUDO) systemctl disable --now prometheus >/dev/null 2>&1 || true; }

# Debian's redis-server: the registry of the dynamic CDN tests (tests/cluster, tests/e2e/test_cluster*.py start their
# own on loopback addresses); the package's service is disabled and stopped
redis:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends redis-server; $(SUDO) systemctl disable --now redis-server >/dev/null 2>&1 || true; }

check: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: $(VENV)/.dev $(WEBSDK) chromium ffmpeg nginx-rtmp prometheus redis check
	$(BIN)/pytest $(PYTEST_ARGS)

$(VENV)/.bench: $(VENV)/.dev
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

janus:
	@command -v janus >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq janus; }

# rtcdn (1 and 2 workers) side by side with Janus; table on stdout, bench/results/latest.json and the plot
bench: $(VENV)/.bench janus
	$(BIN)/python bench/perf.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) web/node_modules state

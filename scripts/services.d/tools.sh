#!/usr/bin/env bash
# Command-line tools the test flow needs (not servers). Sourced by scripts/services.sh, which calls tools_up on
# `up` (scripts/test.sh runs `up` first), so the dependency is explicit:
#
#   docker-compose   Debian's package validates docker-compose.bench.yml without a Docker engine
#                    (tests/Konduit.Benchmarks.Tests runs `docker-compose -f docker-compose.bench.yml config`).
#   python3-cassandra Debian's DataStax Python driver, for the Cassandra interop test (issue 14:
#                    tests/Konduit.Cassandra.Tests writes rows with it and reads ours back, with /usr/bin/python3).
#   kcat             the standalone Kafka client: the outside reader of the heartbeat topic (issue 12:
#                    tests/Konduit.Kafka.Tests reads the mock cluster's topic with it and decodes the documented format).
#   fonts-dejavu-core the benchmark report's charts: ScottPlot draws text with SkiaSharp, whose bundled native
#                    library (no fontconfig) reads fonts from /usr/share/fonts (tests/Konduit.Benchmarks.Tests draws them).
#
# Uses apt_install and log from scripts/services.sh.

tools_up() {
  if ! command -v docker-compose >/dev/null 2>&1; then
    log "tools: installing docker-compose (to validate docker-compose.bench.yml)"
    apt_install docker-compose
  fi
  if ! /usr/bin/python3 -c 'import cassandra' >/dev/null 2>&1; then
    log "tools: installing python3-cassandra (the Cassandra interop test's outside driver)"
    apt_install python3-cassandra
  fi
  if [ ! -d /usr/share/fonts/truetype/dejavu ]; then
    log "tools: installing fonts-dejavu-core (the benchmark charts' text)"
    apt_install fonts-dejavu-core
  fi
  if ! command -v kcat >/dev/null 2>&1; then
    log "tools: installing kcat (the Kafka heartbeat test's outside client)"
    apt_install kcat
  fi
}

# Nothing runs, so there is nothing to stop or to report as down.
tools_down() { :; }
tools_status() { :; }

#!/usr/bin/env bash
# The main job end to end on the embedded defaults: start the platform, ingest
# the recorded mainnet blocks, build, publish and run the erc20-transfers UDF,
# query what it published, and print what happened. Exits 0 when every step
# worked, and stops the platform on the way out.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

DATA_DIR=${TRACE_DATA_DIR:-$(cd .. && pwd)/shared/data/mainnet}
export TRACE_DATA_DIR=$DATA_DIR
export TRACE_HOME=${TRACE_DEMO_HOME:-$PWD/.trace/demo}
THRESHOLD=1000000000000000000000000000
TRACE="$TARGET_DIR/debug/trace"

step "Building the platform and the CLI"
cargo build --quiet -p trace-cli
rm -rf "$TRACE_HOME" && mkdir -p "$TRACE_HOME"

step "Starting the platform: trace dev (log in $TRACE_HOME/dev.log)"
"$TRACE" dev --data-dir "$DATA_DIR" >"$TRACE_HOME/dev.log" 2>&1 &
DEV_PID=$!
trap 'kill -INT $DEV_PID 2>/dev/null; wait $DEV_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  [ -f "$TRACE_HOME/credentials.toml" ] && break
  kill -0 $DEV_PID 2>/dev/null || { tail -n 30 "$TRACE_HOME/dev.log"; fail "trace dev exited"; }
  sleep 0.2
done
[ -f "$TRACE_HOME/credentials.toml" ] || fail "trace dev did not come up; see $TRACE_HOME/dev.log"
echo "platform is up; the CLI picked up its key from $TRACE_HOME/credentials.toml"

step "Ingesting every recorded block through the rpc-gateway"
"$TRACE" ingest --recorded --wait

step "Building the UDF: trace udf build examples/udfs/erc20-transfers"
"$TRACE" udf build examples/udfs/erc20-transfers

step "Publishing it: trace udf publish"
"$TRACE" udf publish examples/udfs/erc20-transfers

step "Running it over the recorded range"
JOB=$("$TRACE" job create erc20-transfers@0.1.0 --from 2654764 --to 25221395 \
  --chunk-size 2000000 --param "threshold=$THRESHOLD" --quiet)
echo "job $JOB"
"$TRACE" job wait "$JOB"

step "Querying the dataset: top tokens by transfer count"
"$TRACE" query "select token, count(*) as transfers, sum(amount) as raw_amount
  from erc20_transfers group by token order by transfers desc, token limit 5"

step "Summary"
"$TRACE" demo-report "$JOB" --tokens "$DATA_DIR/tokens/mainnet_erc20_tokens.csv"

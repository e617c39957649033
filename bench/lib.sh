# Shared by the bench scripts that run real Catena processes: source it,
# then call start_cluster.
#
#   start_cluster PREFIX [EXTRA_ARGS_FOR_CHUNKSERVERS...]
#
# builds the catena binary into a temp dir ($work, $bin), starts `catena
# master` on $master (a random loopback port; the next few ports are the
# master's own) and three `catena chunkserver` processes ($cs holds their
# PIDs, $pids every process started, for the EXIT trap), each logging to
# $work/NAME.log, and waits until the master reports three live
# chunkservers. On exit it kills what it started and, on failure, prints
# the end of every log. `status` prints `catena status --json`.

start_cluster() {
  local prefix=$1
  shift
  work=$(mktemp -d "/tmp/$prefix.XXXXXX")
  bin=$work/catena
  pids=()
  cs=()
  trap bench_cleanup EXIT
  go build -o "$bin" ./cmd/catena
  port=$((20000 + RANDOM % 20000))
  master=127.0.0.1:$port
  "$bin" master --insecure --dir "$work/master" --listen "$master" >"$work/master.log" 2>&1 &
  pids+=($!)
  local i
  for i in 1 2 3; do
    "$bin" chunkserver --insecure --master "$master" --dir "$work/cs$i" --listen 127.0.0.1:0 "$@" >"$work/cs$i.log" 2>&1 &
    cs+=($!)
    pids+=($!)
  done
  local deadline=$((SECONDS + 120))
  until [ "$(status | jq '[.chunkservers[] | select(.alive)] | length == 3' 2>/dev/null)" = true ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "the chunkservers did not come up" >&2
      status >&2
      exit 1
    fi
    sleep 0.1
  done
}

status() { "$bin" status --master "$master" --json 2>/dev/null || echo '{}'; }

bench_cleanup() {
  local rc=$?
  if [ $rc != 0 ]; then
    echo "failed (exit $rc); last log lines:" >&2
    for l in "$work"/*.log; do echo "--- $l" >&2; tail -n 15 "$l" >&2; done
  fi
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

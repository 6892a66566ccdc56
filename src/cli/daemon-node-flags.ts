// The Node flags the daemon is meant to run with: the image's entrypoint passes them
// (deploy/Containerfile) and bench:compare runs kube-ipvs with them, as shipped.
//
// --no-memory-reducer: V8's memory reducer starts up to three full garbage collections once a
// process turns idle after allocating, to give memory back (it is meant for background browser
// tabs). A daemon that wakes every sync period to re-read a large kernel state turns "idle" after
// each resync, so with a cluster's objects in its heap it marked hundreds of megabytes again and
// again: at 5,000 Services × 10 endpoints in the TCG VM, idle CPU 6.21 s/min with it and 3.75
// without it, idle RSS 230 against 251 MB (2026-12-06, docs/performance.md). It cannot be turned
// off from inside the process (v8.setFlagsFromString comes after the heap made its reducer).
export const DAEMON_NODE_FLAGS: readonly string[] = ['--no-memory-reducer'];

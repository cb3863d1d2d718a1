#!/usr/bin/env bash
# A real multi-node Slurm cluster on this one machine, for the test suite (root only).
#
# Each compute node nI is its own network + UTS + mount + PID namespace, held only by its
# supervisor (unshare --kill-child; nothing under /run/netns), with a veth "eth0" = SUBNET.I on a
# bridge that carries SUBNET.254 in the root namespace. munged + slurmctld run in a UTS + mount +
# PID namespace whose hostname resolves to SUBNET.254, so slurmctld listens there only. The node
# namespaces see a cluster hosts file bind-mounted over /etc/hosts; the real one is not touched.
# The filesystem is shared by all nodes, like NFS. If a supervisor dies, even by kill -9, the
# kernel kills everything in its PID namespace and its veth vanishes.
#
#   eval "$(bash tests/slurm/cluster.sh up)"   # prints only: export SLURM_CONF=… PONDER_SLURM_CLUSTER=…
#   bash tests/slurm/cluster.sh down DIR        # idempotent; leaves nothing behind
#   bash tests/slurm/cluster.sh exec DIR NODE CMD...   # run CMD in node NODE's namespaces (or "ctl")
#   bash tests/slurm/cluster.sh                 # up, self-check, down; rc 0 iff all checks pass
# Knobs: PONDER_SLURM_NODES (2), PONDER_SLURM_CPUS (4 per node), PONDER_SLURM_SUBNET (first free
# 10.201.X), PONDER_SLURM_DIR (mktemp -d /tmp/ponder-slurm.XXXXXX), PONDER_SLURM_KEEP=1 (down keeps
# DIR), PONDER_SLURM_ETC_HOSTS=1 (also add the node names to the real /etc/hosts; down removes them).
set -euo pipefail
export PATH=/usr/sbin:/sbin:$PATH
SELF=$(readlink -f "${BASH_SOURCE[0]}")
SLURMD_PORT=6818        # inside each node's own netns, so every node (and cluster) can use it
KILL_WAIT=5

log() { echo "cluster.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }

# --- processes: a PID counts only with its recorded start time (no PID reuse), and zombies are
# dead (pitfall: PID 1 here reaps orphans lazily, so kill -0 "sees" a dead daemon for seconds).
stat_fields() {  # the fields after "pid (comm) ": [0] is the state, [19] the start time
  local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; read -ra F <<<"${s##*) }"
}
start_time() { stat_fields "$1" && echo "${F[19]}"; }
alive() { stat_fields "$1" && [[ ${F[0]} != Z && ${F[19]} == "$2" ]]; }

need_cmds() {
  local c
  for c in "$@"; do
    [[ -x $(command -v "$c") ]] || die "missing command '$c' (Debian: apt-get install slurmctld slurmd slurm-client munge iproute2 openmpi-bin libopenmpi-dev)"
  done
}

# cluster.env: "KEY VALUE" lines written by up, parsed (not sourced) by down/exec/supervisors.
load_env() {
  local k v; SUPS=() TAG="" SUBNET="" NODES=0 PORT="" CTLHOST="" ETC_HOSTS=0
  while read -r k v; do
    case $k in
      TAG | SUBNET | NODES | PORT | CTLHOST | ETC_HOSTS) printf -v "$k" %s "$v" ;;
      SUP) SUPS+=("$v") ;;  # name unshare_pid unshare_start init_pid init_start
    esac
  done <"$1/cluster.env"
}

# --- the supervisors (internal subcommands; each runs as PID 1 of its own PID namespace).
# On TERM they simply exit: the kernel then SIGKILLs everything left in the namespace (daemons,
# slurmstepd, job processes), and all state lives in DIR. They outlive their daemons on purpose,
# so that a test may kill slurmd on a node while the node (and its jobs) stays up.
# They idle in `read` on a FIFO, not in `sleep`, so no stray process shows up in a node's pgrep -f.
idle_forever() {
  mkfifo "$1"; exec 3<>"$1"; rm -f "$1"
  while :; do read -r -u 3 _ || true; done
}

sup_ctl() {
  local d=$1; load_env "$d"
  hostname "$CTLHOST"
  mount -n --bind "$d/etc/hosts" /etc/hosts  # -n: no /run/mount/utab left behind (pitfall)
  munged -F --socket="$d/munge/munge.sock" --key-file="$d/munge-key/munge.key" \
    --pid-file="$d/run/munged.pid" --seed-file="$d/run/munged.seed" \
    --origin="$SUBNET.254" >"$d/log/munged.out" 2>&1 &
  local i; for ((i = 0; i < 200; i++)); do [[ -S $d/munge/munge.sock ]] && break; sleep 0.05; done
  [[ -S $d/munge/munge.sock ]] || { echo "munged: no socket after 10 s" >&2; exit 1; }
  slurmctld -D -f "$d/etc/slurm.conf" >"$d/log/slurmctld.out" 2>&1 &
  touch "$d/run/started-ctl"  # up now expects 2 children (munged, slurmctld)
  idle_forever "$d/run/idle-ctl"
}

sup_node() {
  local d=$1 n=$2 i
  # The parent wires our eth0, then touches go-$n once slurmctld answers.
  for ((i = 0; i < 600; i++)); do [[ -e $d/run/go-$n ]] && break; sleep 0.05; done
  [[ -e $d/run/go-$n ]] || { echo "no go-$n after 30 s" >&2; exit 1; }
  hostname "$n"
  mount -n --bind "$d/etc/hosts" /etc/hosts
  slurmd -D -f "$d/etc/slurm.conf" -N "$n" >"$d/log/slurmd-$n.out" 2>&1 &
  touch "$d/run/started-$n"
  idle_forever "$d/run/idle-$n"
}

# Start a supervisor in new namespaces; prints "unshare_pid unshare_start init_pid init_start".
# setsid + env -i + redirections: it must not hold the caller's terminal, environment or pipes
# (eval "$(… up)" and ctest wait for EOF on those).
spawn() {
  local d=$1 name=$2 ns=$3; shift 3
  setsid env -i PATH="$PATH" HOME=/root LANG=C.UTF-8 \
    unshare $ns --mount --pid --fork --mount-proc --kill-child=SIGTERM bash "$SELF" "$@" \
    </dev/null >"$d/log/sup-$name.log" 2>&1 &
  local up=$! child="" i
  for ((i = 0; i < 200; i++)); do
    read -r child _ <"/proc/$up/task/$up/children" 2>/dev/null || true
    [[ -n $child && $(cat "/proc/$child/comm" 2>/dev/null) == bash ]] && break
    child=""; sleep 0.01
  done
  [[ -n $child ]] || { kill -KILL "$up" 2>/dev/null; die "supervisor $name did not start"; }
  echo "$up $(start_time "$up") $child $(start_time "$child")"
}

# --- up ------------------------------------------------------------------------------------------
subnet_in_use() { { ip -4 -o addr show; ip -4 route show table all; } | grep -qE "(^| )${1//./\\.}\\."; }

# Claim a subnet: the bridge is named after it (ps + 6 hex digits), so creating it is an atomic
# claim that two concurrent `up`s cannot both win.
claim_subnet() {
  local cands=() s x
  if [[ -n ${PONDER_SLURM_SUBNET:-} ]]; then cands=("$PONDER_SLURM_SUBNET"); else
    for x in {0..255}; do cands+=("10.201.$x"); done; fi
  for s in "${cands[@]}"; do
    [[ $s =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "PONDER_SLURM_SUBNET=$s: want A.B.C"
    TAG=$(printf '%02x%02x%02x' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}")
    subnet_in_use "$s" && continue
    if ip link add "ps${TAG}b" type bridge 2>/dev/null; then SUBNET=$s; return 0; fi
  done
  [[ -n ${PONDER_SLURM_SUBNET:-} ]] && die "PONDER_SLURM_SUBNET=$PONDER_SLURM_SUBNET is in use"
  die "no free subnet in 10.201.0-255; set PONDER_SLURM_SUBNET"
}

ipv6_off() { echo 1 >"/proc/sys/net/ipv6/conf/$1/disable_ipv6" 2>/dev/null || true; }  # hygiene

write_conf() {
  local d=$1 i mem
  mem=$(awk '/^MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
  { # Our names first: the first match wins in a hosts file.
    echo "$SUBNET.254 $CTLHOST"
    for ((i = 1; i <= NODES; i++)); do echo "$SUBNET.$i n$i"; done
    grep -v '# ponder-slurm ' /etc/hosts || true
  } >"$d/etc/hosts"
  : >"$d/etc/plugstack.conf"  # keep the system's plugstack.conf out
  # No mpi.conf: PMIxCliTmpDirBase has no %n, so on a shared FS all nodes would create the same
  # spmix_appdir and all but one fail with "File exists". TmpFS=…/%n below is used instead.
  cat >"$d/etc/slurm.conf" <<EOF
ClusterName=ponder$TAG
# slurmctld insists that its hostname -s is this name; the address is what everyone connects to.
SlurmctldHost=$CTLHOST($SUBNET.254)
SlurmctldPort=$PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
# slurmctld binds to what its hostname resolves to (the bridge address), not 0.0.0.0. NOT
# NoInAddrAny: srun in the root namespace would then bind to 127.0.0.1 ("vm") and hang.
CommunicationParameters=NoCtldInAddrAny
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job is held before it may start again (default 120 s).
AuthInfo=socket=$d/munge/munge.sock,cred_expire=5
StateSaveLocation=$d/state
SlurmctldPidFile=$d/run/slurmctld.pid
SlurmctldLogFile=$d/log/slurmctld.log
# Shared filesystem: every per-node path carries %n. TmpFS is also where the pmix plugin puts its
# spmix_appdir_* dirs (out of the real /tmp, and distinct per node).
SlurmdSpoolDir=$d/spool/%n
SlurmdPidFile=$d/run/slurmd-%n.pid
SlurmdLogFile=$d/log/slurmd-%n.log
TmpFS=$d/tmp/%n
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$d/etc/plugstack.conf
# No cgroups anywhere, and no accounting (so --account/--qos are not enforced).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$d/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Start jobs at once after submit, and look at requeued/begin-time jobs every 5 s (default 60/30).
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=5,bf_interval=5
# Debian's Open MPI only speaks PMIx (pmi2/none abort in MPI_Init).
MpiDefault=pmix
# Impossible requests fail at once instead of pending forever.
EnforcePartLimits=ALL
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=$KILL_WAIT
MailProg=/bin/true
# CPUs above the 2 real cores would otherwise drain the node ("Low socket*core*thread count").
SlurmdParameters=config_overrides
EOF
  for ((i = 1; i <= NODES; i++)); do
    echo "NodeName=n$i NodeHostname=n$i NodeAddr=$SUBNET.$i CPUs=$CPUS RealMemory=$mem State=UNKNOWN"
  done >>"$d/etc/slurm.conf"
  echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >>"$d/etc/slurm.conf"
}

# Create node nI's namespaces and wire its eth0 into the bridge.
start_node() {
  local d=$1 i=$2 sup init veth=ps${TAG}v$2
  sup=$(spawn "$d" "n$i" "--net --uts" _node "$d" "n$i"); echo "SUP n$i $sup" >>"$d/cluster.env"
  init=$(awk '{print $3}' <<<"$sup")
  nsenter -t "$init" -n sh -c 'ip link set lo up
    for f in all default; do echo 1 >/proc/sys/net/ipv6/conf/$f/disable_ipv6; done 2>/dev/null || true'
  ip link add "$veth" type veth peer name eth0 netns "$init"
  ipv6_off "$veth"
  ip link set "$veth" master "ps${TAG}b" up
  nsenter -t "$init" -n sh -c "ip addr add $SUBNET.$i/24 dev eth0 && ip link set eth0 up"
}

# During up: fail fast when a supervisor died or lost its daemon(s) (the supervisor's only
# children are its daemons: it idles in `read`, not in a child `sleep`).
daemons_ok() {
  local s name up ust init ist kids
  for s in "${SUPS[@]}"; do
    read -r name up ust init ist <<<"$s"
    alive "$init" "$ist" || die "the supervisor of $name died"
    [[ -e $1/run/started-$name ]] || continue
    kids=(); read -ra kids <"/proc/$init/task/$init/children" || true
    ((${#kids[@]} >= $([[ $name == ctl ]] && echo 2 || echo 1))) || die "a daemon of $name exited"
  done
}

print_logs() {
  local f
  for f in "$1"/log/*; do [[ -s $f ]] && { echo "==== $f" >&2; tail -n 15 "$f" >&2; }; done
  return 0
}

cmd_up() {
  need_cmds slurmctld slurmd munged sinfo srun sbatch squeue scontrol scancel ip ss unshare nsenter setsid mount flock timeout
  [[ $EUID -eq 0 ]] || die "must run as root (network namespaces, veths, a bridge)"
  NODES=${PONDER_SLURM_NODES:-2} CPUS=${PONDER_SLURM_CPUS:-4}
  [[ $NODES =~ ^[0-9]+$ ]] && ((NODES >= 1 && NODES <= 250)) || die "PONDER_SLURM_NODES=$NODES: want 1..250"
  [[ $CPUS =~ ^[0-9]+$ ]] && ((CPUS >= 1)) || die "PONDER_SLURM_CPUS=$CPUS: want >= 1"
  local t0 d p i dl st; t0=$(now_ms)
  d=$(readlink -m "${PONDER_SLURM_DIR:-/tmp/ponder-slurm.XXXXXX}") p=$d
  while p=${p%/*}; [[ -n $p ]]; do  # munged: "execute permissions for all required" on the path
    [[ ! -e $p || $(stat -c %A "$p") == *[xt] ]] || die "$p is not o+x; munged cannot use a socket in $d"
  done
  if [[ -n ${PONDER_SLURM_DIR:-} ]]; then
    mkdir -p "$d"; [[ -z $(ls -A "$d") ]] || die "PONDER_SLURM_DIR=$d is not empty"
  else d=$(mktemp -d /tmp/ponder-slurm.XXXXXX); fi
  : >"$d/cluster.env"  # marks DIR as ours for down
  UP_DIR=$d; trap 'up_failed' EXIT
  mkdir -p "$d"/{etc,munge,munge-key,state,log,run}
  chmod 755 "$d" "$d/munge"  # mktemp -d makes 0700
  chmod 700 "$d/munge-key"
  for ((i = 1; i <= NODES; i++)); do mkdir -p "$d/spool/n$i" "$d/tmp/n$i"; done
  head -c 1024 /dev/urandom >"$d/munge-key/munge.key"; chmod 600 "$d/munge-key/munge.key"
  claim_subnet
  CTLHOST=ctl-$TAG ETC_HOSTS=${PONDER_SLURM_ETC_HOSTS:-0}
  printf '%s %s\n' TAG "$TAG" SUBNET "$SUBNET" NODES "$NODES" CTLHOST "$CTLHOST" >>"$d/cluster.env"
  ipv6_off "ps${TAG}b"
  ip addr add "$SUBNET.254/24" dev "ps${TAG}b"
  ip link set "ps${TAG}b" up
  # slurmctld's port: only bound on SUBNET.254, but must not clash with a wildcard listener.
  for ((PORT = 17000 + ${SUBNET##*.}; PORT < 60000; PORT += 256)); do
    [[ -z $(ss -Hltn "sport = :$PORT") ]] && break
  done
  echo "PORT $PORT" >>"$d/cluster.env"
  write_conf "$d"
  export SLURM_CONF=$d/etc/slurm.conf
  st=$(spawn "$d" ctl --uts _ctl "$d"); echo "SUP ctl $st" >>"$d/cluster.env"
  for ((i = 1; i <= NODES; i++)); do start_node "$d" "$i"; done
  if [[ $ETC_HOSTS == 1 ]]; then
    echo "ETC_HOSTS 1" >>"$d/cluster.env"
    flock /etc/hosts sh -c "sed -n '/^$SUBNET\./s/\$/ # ponder-slurm $TAG/p' '$d/etc/hosts' >>/etc/hosts"
  fi
  load_env "$d"
  dl=$(($(now_ms) + 30000))
  until timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; do
    daemons_ok "$d"; (($(now_ms) < dl)) || die "slurmctld did not answer within 30 s"; sleep 0.05
  done
  for ((i = 1; i <= NODES; i++)); do touch "$d/run/go-n$i"; done
  until st=$(timeout 5 sinfo -h -N -o '%N %t' 2>/dev/null) && [[ $(grep -c ' idle$' <<<"$st") == "$NODES" ]]; do
    daemons_ok "$d"; (($(now_ms) < dl)) || die "nodes not idle within 30 s: ${st//$'\n'/, }"; sleep 0.05
  done
  trap - EXIT
  log "cluster up in $(($(now_ms) - t0)) ms: $NODES nodes n1..n$NODES on $SUBNET.0/24, slurmctld at $SUBNET.254:$PORT, dir $d"
  echo "export SLURM_CONF=$d/etc/slurm.conf"
  echo "export PONDER_SLURM_CLUSTER=$d"
}

up_failed() {
  log "up failed; daemon logs follow, then everything is undone"
  print_logs "$UP_DIR"
  cmd_down "$UP_DIR" || true
  exit 1
}

# --- down ----------------------------------------------------------------------------------------
cmd_down() {
  local d=$1 s name up ust init ist i p ids pids=() starts=() nodes_alive=0 t0; t0=$(now_ms)
  [[ -d $d ]] || { log "down: $d is gone already"; return 0; }
  [[ -f $d/cluster.env ]] || { log "down: $d has no cluster.env; not a cluster dir, left alone"; return 0; }
  load_env "$d"
  for s in "${SUPS[@]}"; do
    read -r name up ust init ist <<<"$s"
    pids+=("$init" "$up") starts+=("$ist" "$ust")
    alive "$init" "$ist" && [[ $name != ctl ]] && nodes_alive=1
  done
  living() { local k; for k in "${!pids[@]}"; do alive "${pids[k]}" "${starts[k]}" && echo "${pids[k]}"; done; return 0; }
  # Cancel first, so that the jobs' own cleanup (SIGTERM, KillWait) runs. Only if slurmctld
  # listens (squeue would hang for seconds otherwise) and a node lives (jobs on dead nodes stay
  # COMPLETING: nothing to wait for).
  if ((nodes_alive)) && [[ -n $PORT && -n $(ss -Hltn "src $SUBNET.254 and sport = :$PORT") ]]; then
    export SLURM_CONF=$d/etc/slurm.conf
    ids=$(timeout 5 squeue -h -o %i 2>/dev/null || true)
    if [[ -n $ids ]]; then
      timeout 5 scancel $ids 2>/dev/null || true
      for ((i = 0; i < (KILL_WAIT + 2) * 10; i++)); do
        [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.1
      done
    fi
  fi
  # TERM the supervisors (unshare, and the init it would pass the TERM to); KILL them after 2 s.
  for p in $(living); do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < 40; i++)); do [[ -z $(living) ]] && break; sleep 0.05; done
  for p in $(living); do kill -KILL "$p" 2>/dev/null || true; done
  if [[ -n ${TAG:-} ]]; then  # the veths die with their netns; only the bridge should be left
    for ((i = 1; i <= ${NODES:-0}; i++)); do ip link del "ps${TAG}v$i" 2>/dev/null || true; done
    ip link del "ps${TAG}b" 2>/dev/null || true
  fi
  if [[ ${ETC_HOSTS:-0} == 1 ]]; then  # rewrite in place (keeps the inode, e.g. a bind mount)
    flock /etc/hosts sh -c "grep -v ' # ponder-slurm $TAG\$' /etc/hosts >'$d/hosts.new'; cat '$d/hosts.new' >/etc/hosts"
  fi
  if [[ ${PONDER_SLURM_KEEP:-0} == 1 ]]; then log "down: kept $d"; else rm -rf "$d"; fi
  log "cluster down in $(($(now_ms) - t0)) ms"
}

cmd_exec() {
  local d=$1 node=$2 s name up ust init ist; shift 2
  [[ -f $d/cluster.env ]] || die "exec: $d is not a cluster dir"
  load_env "$d"
  for s in "${SUPS[@]}"; do
    read -r name up ust init ist <<<"$s"
    [[ $name == "$node" ]] || continue
    alive "$init" "$ist" || die "exec: node $node is not running"
    # shellcheck disable=SC2093
    exec nsenter -t "$init" -n -u -m -p -- "$@"
  done
  die "exec: no node $node in $d"
}

# --- self-check ------------------------------------------------------------------------------------
wait_job() {  # ID SECONDS: poll scontrol every 0.1 s; prints the final JobState
  local st="" i
  for ((i = 0; i < $2 * 10; i++)); do
    st=$(timeout 5 scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' || true)
    st=${st#JobState=}
    case $st in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
      echo "$st"; return 0 ;; esac
    sleep 0.1
  done
  echo "still-${st:-unknown}"
}

write_programs() {
  cat >"$1/hello.c" <<'EOF'
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
  int rank, size, one = 1, sum = 0, len;
  char host[MPI_MAX_PROCESSOR_NAME];
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Get_processor_name(host, &len);
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("rank %d of %d on %s sum=%d\n", rank, size, host, sum);
  MPI_Finalize();
  return sum == size ? 0 : 1;
}
EOF
  # tcp ADDR PORT [PEER]: listen on ADDR:PORT; with PEER, first connect to PEER:PORT (retrying),
  # so two of them prove both ports are bound at once. Then send our hostname to one client.
  cat >"$1/tcp.c" <<'EOF'
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static struct sockaddr_in sa(const char *ip, const char *port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", ip); exit(2); }
  return a;
}
int main(int argc, char **argv) {
  char host[256] = "";
  gethostname(host, sizeof host);
  if (argc < 3) return 1;
  struct sockaddr_in a = sa(argv[1], argv[2]);
  int s = socket(AF_INET, SOCK_STREAM, 0), i = 0, c;
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4)) { perror("bind"); return 3; }
  if (argc > 3) {
    struct sockaddr_in peer = sa(argv[3], argv[2]);
    for (;; usleep(100000)) {
      c = socket(AF_INET, SOCK_STREAM, 0);
      if (!connect(c, (struct sockaddr *)&peer, sizeof peer)) break;
      close(c);
      if (++i == 100) { fprintf(stderr, "%s: %s never listened\n", host, argv[3]); return 4; }
    }
    close(c);
  }
  struct pollfd p = {s, POLLIN, 0};
  if (poll(&p, 1, 15000) != 1) { fprintf(stderr, "%s: no client within 15 s\n", host); return 5; }
  c = accept(s, NULL, NULL);
  if (write(c, host, strlen(host)) < 0) return 6;
  printf("served %s\n", host);
  return 0;
}
EOF
}

selfcheck() {
  need_cmds mpicc
  local out d pass=0 fail=0 got want id st port i n=${PONDER_SLURM_NODES:-2}
  ((n >= 2)) || die "the self-check needs PONDER_SLURM_NODES >= 2"
  out=$(bash "$SELF" up) || exit 1
  eval "$out"; d=$PONDER_SLURM_CLUSTER
  trap 'bash "$SELF" down "$d"' EXIT
  load_env "$d"
  check() {  # NAME GOT WANT
    if [[ $2 == "$3" ]]; then pass=$((pass + 1)); log "PASS $1"
    else fail=$((fail + 1)); log "FAIL $1"; log "  got:  ${2//$'\n'/ | }"; log "  want: ${3//$'\n'/ | }"; fi
  }
  want=$(for ((i = 1; i <= n; i++)); do echo "n$i idle"; done)
  check "sinfo: $n idle nodes" "$(sinfo -h -N -o '%N %t')" "$want"
  check "srun -N2 -n2 hostname" "$(timeout 30 srun -N2 -n2 hostname | sort)" $'n1\nn2'
  got=$(timeout 30 srun -N2 -n2 bash -c 'echo $(hostname) $(getent hosts $(hostname) n1 n2 | awk "{print \$1}")' | sort)
  check "hostname resolves to its own address, other nodes too" "$got" \
    "n1 $SUBNET.1 $SUBNET.1 $SUBNET.2"$'\n'"n2 $SUBNET.2 $SUBNET.1 $SUBNET.2"
  write_programs "$d"
  mpicc -O1 -o "$d/hello" "$d/hello.c" && mpicc -O1 -o "$d/tcp" "$d/tcp.c" || die "mpicc failed"
  printf '#!/bin/bash\nset -e\nsrun --mpi=pmix ./hello\n' >"$d/mpi.sh"
  id=$(timeout 30 sbatch --parsable --nodes=2 --ntasks-per-node=1 -D "$d" -o "$d/mpi-%j.out" "$d/mpi.sh")
  st=$(wait_job "$id" 60)
  check "sbatch -N2 srun --mpi=pmix Allreduce job state" "$st" COMPLETED
  check "MPI ranks on n1 and n2" "$(sort "$d/mpi-$id.out" 2>/dev/null)" \
    $'rank 0 of 2 on n1 sum=2\nrank 1 of 2 on n2 sum=2'
  port=$((20000 + RANDOM % 20000)) got=""
  timeout 30 srun -N1 -w n2 "$d/tcp" "$SUBNET.2" "$port" >/dev/null &
  for ((i = 0; i < 100; i++)); do
    got=$(timeout 2 bash -c "cat </dev/tcp/$SUBNET.2/$port" 2>/dev/null || true)
    [[ -n $got ]] && break; sleep 0.1
  done
  wait $! || true
  check "TCP from the root namespace to a listener on n2 ($SUBNET.2:$port)" "$got" n2
  port=$((port + 1))
  got=$(timeout 30 srun -N2 -n2 bash -c "exec $d/tcp 0.0.0.0 $port $SUBNET.\$((2 - SLURM_NODEID))" | sort)
  check "the same port ($port) listening on n1 and n2 at once" "$got" $'served n1\nserved n2'
  check "exec n2 hostname" "$(bash "$SELF" exec "$d" n2 hostname)" n2
  got=$(bash "$SELF" exec "$d" n1 ss -Hltn "sport = :$SLURMD_PORT" | awk '{print $4}')
  check "slurmd listens inside n1's netns" "$got" "0.0.0.0:$SLURMD_PORT"
  # (Another cluster's slurmctld may listen too, on its own bridge address .254.)
  got=$(ss -Hltnp | grep -E '"(slurmctld|slurmd|munged)"' | awk '{print $4}' | grep -vx "$SUBNET.254:$PORT" |
    grep -v '\.254:[0-9]*$' || true)
  check "root namespace: no slurm/munge listener off the bridges" "$got" ""
  check "slurmctld listens on $SUBNET.254:$PORT" "$(ss -Hltn "sport = :$PORT" | awk '{print $4}')" "$SUBNET.254:$PORT"
  trap - EXIT
  bash "$SELF" down "$d"
  got=$({ [[ -e $d && ${PONDER_SLURM_KEEP:-0} != 1 ]] && echo "dir $d"; ip -o link | grep -o "ps${TAG}[bv][0-9]*"; pgrep -f "$d"; } | tr '\n' ' ' || true)
  check "down leaves no dir, links or processes" "$got" ""
  log "$pass passed, $fail failed"
  ((fail == 0))
}

case ${1:-} in
  up) cmd_up ;;
  down) [[ $# -eq 2 ]] || die "usage: $0 down DIR"; cmd_down "$2" ;;
  exec) [[ $# -ge 4 ]] || die "usage: $0 exec DIR NODE CMD..."; shift; cmd_exec "$@" ;;
  _ctl) trap 'exit 0' TERM; sup_ctl "$2" ;;  # PID 1 of a PID ns ignores signals it has no trap for
  _node) trap 'exit 0' TERM; sup_node "$2" "$3" ;;
  "") selfcheck ;;
  *) die "usage: $0 [up | down DIR | exec DIR NODE CMD...]" ;;
esac

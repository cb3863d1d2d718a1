#!/usr/bin/env bash
# mpirun with what Open MPI needs on a single machine run by root in a container: permission to run
# as root, oversubscription (more ranks than cores), and loopback-only transports (shared memory
# between ranks, TCP out-of-band on lo). Usage: scripts/mpirun.sh -np N PROGRAM ARGS...
set -euo pipefail
export OMPI_MCA_btl=self,vader
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_oob_tcp_if_include=lo
export OMPI_MCA_rmaps_base_oversubscribe=1
exec mpirun --allow-run-as-root --oversubscribe --bind-to none "$@"

#!/bin/sh
# Starts LiteFS, which mounts the database directory, joins the cluster and
# then runs the app (litefs.yml's exec:).
#
# litefs.yml takes its values from the environment. Most have defaults in
# the Dockerfile; the two that differ from machine to machine are set here,
# unless the environment already has them.
set -eu

if [ "${LITEFS_LEASE_TYPE:-}" = consul ]; then
	# On Fly.io the host name is the machine ID: LiteFS's name for this node
	# and the instance= of fly-replay. Other machines reach its LiteFS API at
	# <machine ID>.vm.<app>.internal.
	: "${LITEFS_HOSTNAME:=${FLY_MACHINE_ID:?is not set: not on Fly.io? set LITEFS_HOSTNAME and LITEFS_ADVERTISE_URL}}"
	: "${LITEFS_ADVERTISE_URL:=http://${LITEFS_HOSTNAME}.vm.${FLY_APP_NAME:?is not set}.internal:${LITEFS_HTTP_ADDR##*:}}"
	: "${FLY_CONSUL_URL:?is not set: run fly consul attach}"
fi
export LITEFS_HOSTNAME="${LITEFS_HOSTNAME:-}" LITEFS_ADVERTISE_URL="${LITEFS_ADVERTISE_URL:-}"

exec litefs mount -config "${LITEFS_CONFIG:-/etc/litefs.yml}"

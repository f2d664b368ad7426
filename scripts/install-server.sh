#!/usr/bin/env bash
# Installs a server binary for the tests: valkey-server, or the
# wire-compatible redis-server when the distribution has no valkey package.
# Does nothing when either is already on PATH. Non-interactive and
# idempotent; needs root (or sudo) and apt-get to install anything.
set -euo pipefail

for bin in valkey-server redis-server; do
	if path=$(command -v "$bin"); then
		echo "install-server: $bin already installed: $path"
		exit 0
	fi
done

# as_root runs a command as root: directly, or through sudo (without a
# password prompt unless standard input is a terminal).
if [ "$(id -u)" -eq 0 ]; then
	as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	as_root() { sudo -n "$@"; }
elif command -v sudo >/dev/null 2>&1 && [ -t 0 ]; then
	as_root() { sudo "$@"; }
else
	echo "install-server: neither valkey-server nor redis-server is on PATH, and installing" >&2
	echo "install-server: one needs root: run this script as root or with sudo, or install" >&2
	echo "install-server: valkey-server (or redis-server) yourself and put it on PATH." >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-server: apt-get not found; install valkey-server (or redis-server) with" >&2
	echo "install-server: your package manager and put it on PATH." >&2
	exit 1
fi

apt_install() {
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null
}

as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
if apt_install valkey-server; then
	pkg=valkey-server
else
	echo "install-server: no valkey-server package; installing redis-server instead" >&2
	apt_install redis-server # also brings redis-cli and redis-benchmark
	pkg=redis-server
fi

# The Debian package may start a system service: tests start their own
# servers, so stop it. Neither step may fail where no init system runs.
as_root service "$pkg" stop >/dev/null 2>&1 || true
as_root systemctl disable --now "$pkg" >/dev/null 2>&1 || true

for bin in valkey-server redis-server; do
	if path=$(command -v "$bin"); then
		echo "install-server: installed $bin: $path ($("$bin" --version))"
		exit 0
	fi
done
echo "install-server: installed $pkg, but neither valkey-server nor redis-server is on PATH" >&2
exit 1

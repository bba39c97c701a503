#!/bin/sh
# cuda-repo.sh VERSION [PACKAGE-STEM...]: adds NVIDIA's CUDA repository
# for Debian 12 (its keyring package, the way NVIDIA's install guide does
# it) and installs, for CUDA VERSION (12.4), each PACKAGE-STEM with the
# version appended (cuda-cudart -> cuda-cudart-12-4), then points
# /usr/local/cuda (where CMakeLists.txt looks) at that toolkit and tells
# the dynamic linker where its libraries are. Needs curl and
# ca-certificates. Used by Dockerfile.comfyui's stages only.
set -eu
version=$1
shift
v=$(echo "$version" | tr . -)
curl -fsSL -o /tmp/cuda-keyring.deb \
	https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb
dpkg -i /tmp/cuda-keyring.deb
rm -f /tmp/cuda-keyring.deb
pkgs=
for p in "$@"; do pkgs="$pkgs $p-$v"; done
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $pkgs
apt-get clean
rm -rf /var/lib/apt/lists/*
[ -e /usr/local/cuda ] || ln -s "cuda-$version" /usr/local/cuda
echo "/usr/local/cuda-$version/targets/x86_64-linux/lib" \
	>/etc/ld.so.conf.d/comfyq-cuda.conf
ldconfig
